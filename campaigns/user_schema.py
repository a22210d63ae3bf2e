"""A partnership's user-attribute schema in Pilot: the trigger schemas' field editor, and the
same refusal of a change that would stop an active campaign (``user_schema_change_check``).

The partnerships app cannot know about schemas or campaigns (the dependency points this way),
so this app registers its own admin for partnerships, built on theirs (``campaigns/admin.py``).
"""

from django import forms
from django.contrib import messages
from django.urls import path

from partnerships.admin import PartnershipAdmin
from partnerships.models import Partnership
from partnerships.pilot_revision import RevisionFormMixin
from triggers.pilot import views
from triggers.pilot.forms import SCHEMA_MODE, SchemaEditorForm
from triggers.schemas import validate_context_schema

from .services import user_schema_change_check
from .trigger_admin import _described


class PartnershipForm(RevisionFormMixin, SchemaEditorForm):
    """Refuses a user-attribute schema that is not one, or that would stop an active campaign
    of the partnership (naming it and its errors); draft and paused ones it breaks are warned."""

    schema_field = "user_attribute_schema"
    schema_help_text = (
        "The attributes partners set with PUT/PATCH /partnerships/{id}/users/{external_user_id} "
        "(checked against this schema: 422 per field); rules read an attribute named tier as "
        "user.tier, typed from here. Empty: any attributes, read untyped."
    )
    campaign_refusals: tuple = ()
    campaign_warnings: tuple = ()

    class Meta:
        model = Partnership
        fields = "__all__"

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.schema_field not in cleaned or self.instance.pk is None:
            return cleaned
        if self.schema_field not in self.data and SCHEMA_MODE not in self.data:
            # A post without the section (a script, an older page): the schema is unchanged.
            cleaned[self.schema_field] = getattr(self.instance, self.schema_field)
        elif cleaned[self.schema_field] in (None, ""):
            cleaned[self.schema_field] = {"type": "object"}  # emptied: any attributes
        schema = self.schema = cleaned[self.schema_field]
        try:
            validate_context_schema(schema)
        except forms.ValidationError as exc:
            self.add_error(self.schema_field, exc)
            return cleaned
        check = user_schema_change_check(partnership=self.instance, new_schema=schema)
        for broken in check.refused:
            self.add_error(
                self.schema_field,
                f"This change would stop the active campaign {broken}. Change the campaign "
                "first, or pause it.",
            )
        self.campaign_refusals, self.campaign_warnings = check.refused, check.warned
        return cleaned


class PartnershipWithUserSchemaAdmin(PartnershipAdmin):
    form = PartnershipForm
    fieldsets = (
        *PartnershipAdmin.fieldsets[:-1],
        ("End users", {"fields": ("user_attribute_schema",)}),
        PartnershipAdmin.fieldsets[-1],
    )

    def get_urls(self) -> list:
        check = self.admin_site.admin_view(
            lambda request, object_id: views.schema_check(self, request, object_id)
        )
        route = path("<path:object_id>/schema-check/", check, name="partnerships_schema_check")
        return [route, *super().get_urls()]

    def get_fieldsets(self, request, obj=None):
        # A new partnership has no campaigns to check its schema against: set it once saved.
        if obj is None:
            return PartnershipAdmin.fieldsets
        return super().get_fieldsets(request, obj)  # with the revision the page loaded

    def schema_check_extra(self, form: PartnershipForm, partnership) -> dict:
        return {
            "refused": [_described(broken) for broken in form.campaign_refusals],
            "warned": [_described(broken) for broken in form.campaign_warnings],
        }

    def save_model(self, request, obj: Partnership, form: PartnershipForm, change: bool) -> None:
        super().save_model(request, obj, form, change)  # audited: partnership.change
        for broken in form.campaign_warnings:
            self.message_user(
                request,
                f"The {broken.status} campaign {broken} no longer compiles: it cannot be "
                "activated as it is.",
                messages.WARNING,
            )
