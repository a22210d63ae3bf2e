"""Pilot's change forms carry the revision they loaded (a hidden field) to the same service as
the management API, so a save made on a page opened before someone else's change is refused
with a clear error instead of overwriting it (``config.revisions``)."""

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect

from config.errors import ApplicationError, ErrorCode
from config.revisions import revision_stale

LOADED = "loaded_revision"
MISSING = (
    "This page did not send the revision it was opened at, so your changes could overwrite "
    "someone else's and were not saved: reload the page, then make them again."
)


class RevisionFormMixin(forms.Form):
    """A mixin for a ModelForm of a model with ``revision``."""

    loaded_revision = forms.IntegerField(
        required=False, min_value=0, max_value=2_147_483_647, widget=forms.HiddenInput
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields[LOADED].initial = self.instance.revision

    def clean(self) -> dict:
        cleaned = super().clean()
        if (
            not self.instance._state.adding
            and cleaned.get(LOADED) is None
            and LOADED not in self.errors
        ):
            # Without it, a save would overwrite whatever changed since the page was opened.
            self.add_error(None, MISSING)
            return cleaned
        if stale := revision_stale(instance=self.instance, expected=cleaned.get(LOADED)):
            raise ValidationError(stale, code="version_conflict")
        return cleaned

    @property
    def loaded(self) -> int | None:
        return self.cleaned_data.get(LOADED)


class RevisionForm(RevisionFormMixin, forms.ModelForm):
    """The default model form, with the revision it loaded."""


class RevisionAdminMixin:
    """A ModelAdmin mixin: the change page renders the hidden revision (in its first
    fieldset), so its form sends it back. Its form must have the field (``RevisionForm``,
    or ``RevisionFormMixin`` in its own)."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A save that lost the race after its form was checked (the service refuses it under
        the row lock: 412) comes back as the same error, on the page, not a server error."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            if exc.code != ErrorCode.VERSION_CONFLICT:
                raise
            name = self.model._meta.verbose_name
            messages.error(
                request,
                f"Someone changed this {name} while you were saving it. Your changes were "
                "not saved: reload the page to see theirs, then make yours again.",
            )
            return HttpResponseRedirect(request.get_full_path())

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None or LOADED in flatten_fieldsets(fieldsets):
            return fieldsets
        (name, options), *rest = fieldsets
        return [(name, {**options, "fields": (*options["fields"], LOADED)}), *rest]


class RefusedSaveAdminMixin:
    """A ModelAdmin mixin: a save its service refuses under the row lock (the row changed
    after the form was checked) comes back on the page as the service's message, not as a
    server error; nothing was saved (the admin's transaction rolled back)."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            errors = exc.errors or [{"message": exc.message}]
            messages.error(request, " ".join(error["message"] for error in errors))
            return HttpResponseRedirect(request.get_full_path())
