"""Actions on one object in Pilot (retry an event, block a user, reverse a reward): a button
on the object's page opens a page of its own with the form (a reason, an amount), whose POST
calls one service. Each page takes the object through the admin's scoped queryset (another
partnership's object is a 404, even by URL) and checks its permission (a 403 without it)."""

from dataclasses import dataclass

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse


@dataclass(frozen=True)
class ObjectAction:
    label: str
    url: str
    icon: str = "bolt"


class ObjectActionsAdmin:
    """A ModelAdmin mixin: ``object_actions`` are shown at the top of the change page;
    ``object_action_urls`` are ``(suffix, view)`` pairs served under ``<id>/<suffix>/`` through
    ``admin_view`` (Pilot's login)."""

    change_form_outer_before_template = "pilot/object_actions.html"
    object_action_urls: tuple[tuple[str, str], ...] = ()  # (suffix, name of the view method)

    def object_actions(self, request: HttpRequest, obj) -> list[ObjectAction]:
        return []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["object_actions"] = self.object_actions(request, obj) if obj is not None else []
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        custom = [
            path(
                f"<path:object_id>/{suffix}/",
                self.admin_site.admin_view(getattr(self, method)),
                name="{}_{}_{}".format(*info, suffix),
            )
            for suffix, method in self.object_action_urls
        ]
        return custom + super().get_urls()

    def action_url(self, obj, suffix: str) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_{suffix}", args=[obj.pk]
        )

    def change_url(self, obj) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])

    def object_for_action(self, request: HttpRequest, object_id: str, permission: str):
        """The object, if the operator sees it (else 404) and has ``permission`` (else 403)."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with this id among your partnerships")
        if not request.user.has_perm(permission):
            raise PermissionDenied(f"You need the permission {permission} for this.")
        return obj

    def action_page(
        self,
        request: HttpRequest,
        obj,
        *,
        title: str,
        form,
        intro: str = "",
        submit: str = "Confirm",
        details: list[tuple[str, str]] = (),
        status=200,
    ):
        """The page of an action: what it acts on, the form (with its errors), confirm or go
        back."""
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "original": obj,
            "intro": intro,
            "form": form,
            "submit": submit,
            "details": details,
            "back_url": self.change_url(obj),
        }
        return TemplateResponse(request, "pilot/action_form.html", context, status=status)
