"""The campaign builder's part of the campaign admin: its form, the rule-check endpoint the
page calls as the operator types, and the panel of what the rule can use."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.template.loader import render_to_string
from django.urls import path
from django.views.decorators.http import require_POST

from partnerships.scoping import scope_queryset
from triggers.models import Trigger

from ..models import Campaign
from .builder import CampaignBuilderForm, FactRowsField
from .checks import Problem, Vocabulary, rule_check, rule_vocabulary


class RuleCheckForm(forms.Form):
    """The fields of the campaign form a rule check reads (the page posts the whole form)."""

    trigger = forms.ModelChoiceField(
        queryset=Trigger.objects.none(),
        error_messages={"required": "Choose a trigger", "invalid_choice": "Choose a trigger"},
    )
    condition = forms.CharField(required=False, strip=False)
    reward_type = forms.CharField(required=False)
    reward_expression = forms.CharField(required=False, strip=False)
    facts = FactRowsField(required=False)

    def __init__(self, *args, triggers, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["trigger"].queryset = triggers


def vocabulary_html(vocabulary: Vocabulary | None) -> str:
    sections = []
    if vocabulary:
        sections = [
            ("Context fields", vocabulary.context, "The trigger's schema declares no fields."),
            ("User attributes", vocabulary.user, ""),
            ("Facts", vocabulary.facts, "No facts: add rows in the Facts table."),
            ("Event", vocabulary.event, ""),
        ]
    return render_to_string(
        "campaigns/pilot/vocabulary.html", {"vocabulary": vocabulary, "sections": sections}
    )


class CampaignBuilderAdmin:
    """A ModelAdmin mixin (before ModelAdmin) for the campaign admin."""

    form = CampaignBuilderForm

    class Media:
        js = ("campaigns/builder.js",)
        css = {"all": ("campaigns/builder.css",)}

    def get_urls(self):
        check = self.admin_site.admin_view(require_POST(self.rule_check_view))
        return [
            path("rule-check/", check, name="campaigns_campaign_rule_check"),
            *super().get_urls(),
        ]

    def rule_check_view(self, request: HttpRequest) -> JsonResponse:
        """The problems of the posted condition, reward expression and facts, and the panel
        for the posted trigger; JSON, always 200 for what an operator can type."""
        if not (self.has_view_or_change_permission(request) or self.has_add_permission(request)):
            raise PermissionDenied
        triggers = scope_queryset(Trigger.objects.all(), request.user, "partnership")
        form = RuleCheckForm(request.POST, triggers=triggers)
        form.is_valid()
        data = form.cleaned_data
        problems = {
            name: Problem(" ".join(errors)).as_json()
            for name, errors in form.errors.items()
            if name in ("trigger", "facts")
        }
        vocabulary = None
        if "trigger" in data:
            check = rule_check(
                trigger=data["trigger"],
                condition=data.get("condition", ""),
                reward_type=data.get("reward_type", ""),
                reward_expression=data.get("reward_expression", ""),
                facts=data.get("facts", []),
            )
            problems |= {name: problem.as_json() for name, problem in check.problems.items()}
            vocabulary = check.vocabulary
        return JsonResponse(
            {"ok": not problems, "problems": problems, "panel": vocabulary_html(vocabulary)}
        )

    @admin.display(description="What the rule can use")
    def rule_vocabulary(self, campaign: Campaign) -> str:
        if campaign is None or campaign.trigger_id is None:
            return vocabulary_html(None)
        return vocabulary_html(rule_vocabulary(trigger=campaign.trigger, facts=campaign.facts))
