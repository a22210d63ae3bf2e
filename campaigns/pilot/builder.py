"""The campaign form of Pilot's builder: facts edited as rows (a formset), expressions that
show where they fail, and the steps the form is laid out in.

The rows are one form field (``facts``) whose widget renders and reads a formset, so the model
keeps its JSON list and the admin needs no custom save. A POST that sends ``facts`` as JSON
(no rows) is still read: raw JSON for scripts and old tests.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.forms import formset_factory
from django.urls import reverse
from unfold.widgets import (
    INPUT_CLASSES,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from config.json_input import pilot_json_loads
from partnerships.pilot_revision import RevisionFormMixin

from ..models import FACT_NAME, Campaign
from .checks import Problem, rule_problems

AGGREGATES = [("count", "Count of events"), ("sum", "Sum of a field")]


class FactRowForm(forms.Form):
    """One fact: a per-user count or sum over a window of days."""

    name = forms.RegexField(
        FACT_NAME,
        max_length=40,
        error_messages={"invalid": "Lower case letters, digits and _, starting with a letter"},
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "purchases_30d"}),
    )
    aggregate = forms.ChoiceField(choices=AGGREGATES, widget=UnfoldAdminSelectWidget)
    field = forms.CharField(
        required=False,
        max_length=64,
        help_text="For a sum: the numeric context field",
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "amount"}),
    )
    window_days = forms.IntegerField(
        min_value=1,
        max_value=366,
        widget=forms.NumberInput(attrs={"class": " ".join(INPUT_CLASSES)}),
    )
    trigger = forms.CharField(
        required=False,
        max_length=100,
        help_text="Blank: the campaign's own trigger",
        widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "this campaign's trigger"}),
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("aggregate") == "sum" and not cleaned.get("field"):
            self.add_error("field", "A sum needs the numeric context field it adds up")
        return cleaned

    def fact(self) -> dict:
        """The fact as the campaign stores it (``campaigns.compiler`` reads this form)."""
        data = self.cleaned_data
        fact = {"name": data["name"], "aggregate": data["aggregate"]}
        if data["aggregate"] == "sum":
            fact["field"] = data["field"]
        if data["trigger"]:
            fact["trigger"] = data["trigger"]
        fact["window_days"] = data["window_days"]
        return fact


FactFormSet = formset_factory(FactRowForm, extra=0, can_delete=True, max_num=20, validate_max=True)


def _rows(facts) -> list[dict]:
    """Saved facts as the rows' initial values (what is not a fact object is left out: the
    compiler reports it)."""
    if not isinstance(facts, list):
        return []
    return [
        {
            "name": fact.get("name", ""),
            "aggregate": fact.get("aggregate", "count"),
            "field": fact.get("field", ""),
            "window_days": fact.get("window_days"),
            "trigger": fact.get("trigger", ""),
        }
        for fact in facts
        if isinstance(fact, dict)
    ]


class FactRowsWidget(forms.Widget):
    template_name = "campaigns/pilot/fact_rows.html"

    def value_from_datadict(self, data, files, name):
        if f"{name}-TOTAL_FORMS" in data:
            return FactFormSet(data=data, prefix=name)
        return data.get(name)  # raw JSON

    def value_omitted_from_data(self, data, files, name) -> bool:
        return f"{name}-TOTAL_FORMS" not in data and name not in data

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        if not isinstance(value, FactFormSet):
            value = FactFormSet(initial=_rows(_loads(value)), prefix=name)
        context["formset"] = value
        return context


def _loads(value):
    if isinstance(value, str):
        try:
            return pilot_json_loads(value)
        except ValidationError:
            return []
    return value


class FactRowsField(forms.Field):
    """The facts as rows; cleans to the list of fact objects the model stores."""

    widget = FactRowsWidget

    def clean(self, value) -> list:
        if isinstance(value, FactFormSet):
            if not value.is_valid():
                raise ValidationError(_row_errors(value))
            return [
                form.fact()
                for form in value.forms
                if form.has_changed() and not form.cleaned_data.get("DELETE")
            ]
        if value in (None, ""):
            return []
        return pilot_json_loads(value) if isinstance(value, str) else value

    def has_changed(self, initial, data) -> bool:
        try:
            return self.clean(data) != (initial or [])
        except ValidationError:
            return True


def _row_errors(formset) -> list[str]:
    messages = [str(error) for error in formset.non_form_errors()]
    for index, form in enumerate(formset.forms, start=1):
        for field, errors in form.errors.items():
            where = f"fact {index}" if field == "__all__" else f"fact {index}, {field}"
            messages.extend(f"{where}: {error}" for error in errors)
    return messages


class ExpressionWidget(UnfoldAdminTextareaWidget):
    """A CEL expression: checked as the operator types (``builder.js`` asks the rule-check
    URL), and, after a save that failed, with a caret under the character the error is at."""

    template_name = "campaigns/pilot/expression.html"
    problem: Problem | None = None

    def __init__(self, attrs=None) -> None:
        super().__init__({"rows": 3, "spellcheck": "false", "class": "font-mono", **(attrs or {})})

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["attrs"]["data-rule-field"] = name
        context["check_url"] = reverse("admin:campaigns_campaign_rule_check")
        context["problem"] = self.problem
        return context


class CampaignBuilderForm(RevisionFormMixin, forms.ModelForm):
    facts = FactRowsField(
        required=False,
        help_text="Per-user aggregates the condition and reward can read as facts.<name>.",
    )

    class Meta:
        model = Campaign
        # The admin lays these out in steps (its fieldsets decide which it shows).
        fields = (
            *("partnership", "trigger", "name", "slug", "description", "status"),
            *("starts_at", "ends_at", "priority", "exclusive", "condition", "facts"),
            *("reward_type", "reward_value", "reward_field", "reward_expression"),
            *("reward_min", "reward_max", "rounding", "budget", "max_rewards"),
            *("max_rewards_per_user", "max_rewards_per_user_per_period", "period"),
            "max_amount_per_user",
        )
        widgets = {
            "condition": ExpressionWidget,
            "reward_expression": ExpressionWidget,
        }

    def clean(self) -> dict:
        """Marks where each expression fails (the messages come from the model's validation,
        which runs the same compiler)."""
        cleaned = super().clean()
        trigger = cleaned.get("trigger")
        if trigger is None or "facts" not in cleaned:
            return cleaned
        problems = rule_problems(
            trigger=trigger,
            condition=cleaned.get("condition") or "",
            reward_type=cleaned.get("reward_type") or "",
            reward_expression=cleaned.get("reward_expression") or "",
            facts=cleaned["facts"],
        )
        for field in ("condition", "reward_expression"):
            if field in self.fields:
                self.fields[field].widget.problem = problems.get(field)
        return cleaned
