"""Pilot's trigger forms: the schema's field editor (rows, or raw JSON) and the test event."""

import json

from django import forms
from django.core.exceptions import ValidationError
from unfold.widgets import (
    BASE_INPUT_CLASSES,
    SELECT_CLASSES,
    TEXTAREA_CLASSES,
    UnfoldAdminTextareaWidget,
    UnfoldBooleanWidget,
)

from config.json_input import pilot_json_loads
from partnerships.pilot_revision import RevisionFormMixin

from ..models import Trigger
from ..schema_editor import (
    TYPES,
    FieldRow,
    NotExpressible,
    RowsInvalid,
    rows_to_schema,
    schema_to_rows,
)

SCHEMA_MODE = "schema_mode"  # "fields" (the rows) or "raw" (the JSON); a post without it: raw
ROWS_PREFIX = "rows"
TYPE_LABELS = {"timestamp": "timestamp (date-time)", "enum": "enum (values)"}


def _text(size: int) -> forms.TextInput:
    return forms.TextInput(attrs={"class": " ".join(BASE_INPUT_CLASSES), "size": size})


class FieldRowForm(forms.Form):
    name = forms.CharField(required=False, max_length=130, widget=_text(18))
    type = forms.ChoiceField(
        initial="string",
        choices=[(kind, TYPE_LABELS.get(kind, kind)) for kind in TYPES],
        widget=forms.Select(attrs={"class": " ".join(SELECT_CLASSES)}),
    )
    required = forms.BooleanField(required=False, widget=UnfoldBooleanWidget)
    description = forms.CharField(required=False, max_length=500, widget=_text(20))
    values = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 14, "class": " ".join(TEXTAREA_CLASSES)}),
    )
    minimum = forms.CharField(required=False, max_length=40, widget=_text(6))
    maximum = forms.CharField(required=False, max_length=40, widget=_text(6))
    min_length = forms.CharField(required=False, max_length=10, widget=_text(4))
    max_length = forms.CharField(required=False, max_length=10, widget=_text(4))
    pattern = forms.CharField(required=False, max_length=500, widget=_text(12))


FieldRowFormSet = forms.formset_factory(FieldRowForm, extra=1, can_delete=True)


class SchemaEditorWidget(UnfoldAdminTextareaWidget):
    """The raw JSON textarea, with the field editor's rows beside it (one is shown at a time)."""

    template_name = "triggers/pilot/schema_editor.html"

    def __init__(self, editor: "SchemaEditorForm") -> None:
        super().__init__(attrs={"rows": 14, "spellcheck": "false", "data-raw-schema": ""})
        self.editor = editor

    def format_value(self, value):
        """The JSON indented, to be read and edited (text that is not JSON is left as typed)."""
        try:
            return json.dumps(pilot_json_loads(value), indent=2)
        except (TypeError, ValidationError):
            return super().format_value(value)

    def get_context(self, name, value, attrs) -> dict:
        context = super().get_context(name, value, attrs)
        context["editor"] = self.editor
        return context

    class Media:
        js = ("triggers/schema_editor.js",)
        css = {"all": ("triggers/schema_editor.css",)}


class RowsSchemaField(forms.Field):
    """context_schema as the rows write it: the raw textarea's text is not read."""

    def __init__(self, rows: forms.BaseFormSet, **kwargs) -> None:
        super().__init__(required=False, **kwargs)
        self.rows = rows

    def clean(self, value) -> dict:
        self.schema = rows_schema(self.rows)
        return self.schema

    def has_changed(self, initial, data) -> bool:
        """Against the schema the rows wrote (the history says "changed" only if it did)."""
        return getattr(self, "schema", None) != initial


def rows_schema(rows: forms.BaseFormSet) -> dict:
    """The schema of a bound formset of rows; the rows' own errors are added to their fields."""
    if not rows.is_valid():
        raise ValidationError("Some field rows are not valid: see the rows.")
    kept = [  # a blank row is skipped; one with anything typed in needs a name
        form for form in rows.forms if not form.cleaned_data.get("DELETE") and form.has_changed()
    ]
    try:
        return rows_to_schema(
            [FieldRow(**{key: form.cleaned_data[key] for key in _ROW_FIELDS}) for form in kept]
        )
    except RowsInvalid as exc:
        for index, errors in exc.errors.items():
            for field, message in errors.items():
                kept[index].add_error(field, message)
        raise ValidationError("Some field rows are not valid: see the rows.") from exc


_ROW_FIELDS = list(FieldRowForm.base_fields)


class SchemaEditorForm(forms.ModelForm):
    """A model form whose JSON Schema field (``schema_field``) is edited as rows (or as raw
    JSON, for what rows cannot say): a trigger's context schema, a partnership's user-attribute
    schema (campaigns/user_schema.py).

    ``mode``: what the page shows first; a schema the rows cannot express opens in raw JSON
    with ``raw_note`` saying why, so nothing is dropped by a save from the rows."""

    schema_field = "context_schema"
    schema_help_text = (
        "The fields partners send in transaction_context; rules read a field named "
        "amount as context.amount. A field named address.city belongs to the object field "
        "address (one level of nesting; deeper needs raw JSON)."
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.schema_field not in self.fields:
            return
        self.raw_note = ""
        self.rows, self.mode = self._rows()
        if self.is_bound and self.mode == "fields":
            self.fields[self.schema_field] = RowsSchemaField(
                self.rows, label=self.fields[self.schema_field].label
            )
        field = self.fields[self.schema_field]
        field.widget = SchemaEditorWidget(self)
        field.help_text = self.schema_help_text

    def clean(self) -> dict:
        cleaned = super().clean()
        self.schema = cleaned.get(self.schema_field)  # what the check shows, even if refused
        return cleaned

    def _rows(self) -> tuple[forms.BaseFormSet, str]:
        """The rows and the mode shown: the posted rows, or the schema's (raw if it needs)."""
        if self.is_bound and self.data.get(SCHEMA_MODE) == "fields":
            return FieldRowFormSet(self.data, prefix=ROWS_PREFIX), "fields"
        try:
            saved = getattr(self.instance, self.schema_field)
            rows = schema_to_rows(self.initial.get(self.schema_field, saved))
        except NotExpressible as exc:
            self.raw_note = str(exc)
            return FieldRowFormSet(prefix=ROWS_PREFIX), "raw"
        initial = [row.as_dict() for row in rows]
        return FieldRowFormSet(prefix=ROWS_PREFIX, initial=initial), (
            "raw" if self.is_bound else "fields"
        )


class TriggerSchemaForm(RevisionFormMixin, SchemaEditorForm):
    """A trigger, its context schema edited as rows (or as raw JSON); with the revision it
    loaded (``partnerships.pilot_revision``)."""

    class Meta:
        model = Trigger
        fields = (
            "partnership",
            "name",
            "description",
            "context_schema",
            "status",
            "client_sendable",
        )


class TestEventForm(forms.Form):
    """What an operator sends: a user and a context; the API's checks run on them as sent."""

    external_user_id = forms.CharField(
        required=False,
        max_length=1000,
        help_text="The partner's id of the user (created on the first event, as by the API).",
    )
    transaction_context = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        help_text="JSON, checked against the trigger's schema as the API checks it.",
    )

    def clean_transaction_context(self):
        text = self.cleaned_data["transaction_context"].strip() or "{}"
        return pilot_json_loads(text)

    def add_ingest_errors(self, errors: list[dict], message: str) -> None:
        """The API's per-field errors, each at the form field it concerns."""
        if not errors:
            self.add_error(None, message)
        for error in errors:
            field = error["field"]
            if field == "external_user_id" or field.startswith("transaction_context"):
                target = field.split(".", 1)[0].split("[", 1)[0]
                self.add_error(target, f"{field}: {error['message']}")
            else:
                self.add_error(None, f"{field or 'body'}: {error['message']}")
