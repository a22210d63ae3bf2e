"""What a Pilot user sees is limited to their partnerships: one mixin for every admin page.

``partnerships.selectors.partnerships_for_operator`` says which partnerships a user may see;
this applies it to a ModelAdmin's rows (``partnership_path``: the lookup from the model to its
partnership), so to its lists, search, change pages by URL (they answer "does not exist"),
history and the autocomplete of fields that point at it; to the choices of its foreign keys
(dropdowns and autocomplete) and of its related-field list filters.
"""

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db.models import JSONField, Model, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import Http404

from config.json_input import PilotJSONField

from .models import Partner, Partnership
from .selectors import partnerships_for_operator, pilot_users_for_operator


def scope_queryset(queryset: QuerySet, user, partnership_path: str) -> QuerySet:
    """The rows of ``queryset`` whose partnership (``partnership_path``) the user may see."""
    if user.is_active and user.is_superuser:
        return queryset
    lookup = {f"{partnership_path}__in": partnerships_for_operator(user=user).values("pk")}
    if _crosses_many(queryset.model, partnership_path):  # e.g. a partner's partnerships
        model = queryset.model
        return queryset.filter(pk__in=model._default_manager.filter(**lookup).values("pk"))
    return queryset.filter(**lookup)


def partnership_path_for(model: type[Model]) -> str | None:
    """How ``model`` reaches its partnership, or None for rows that belong to none: the path its
    scoped ModelAdmin declares, else a ``partnership`` foreign key."""
    if model is Partnership:
        return "pk"
    if model is Partner:
        return "partnerships"
    model_admin = admin.site._registry.get(model)
    if isinstance(model_admin, PartnershipScopedAdmin):
        return model_admin.partnership_path
    try:
        field = model._meta.get_field("partnership")
    except FieldDoesNotExist:
        return None
    return "partnership" if getattr(field, "related_model", None) is Partnership else None


def scoped_choices(model: type[Model], queryset: QuerySet, user) -> QuerySet:
    """``queryset`` (rows of ``model`` offered in a form or a filter) limited to what the user
    may see; Pilot's users are limited to those of the user's partnerships."""
    if model is get_user_model():
        return queryset.filter(pk__in=pilot_users_for_operator(user=user).values("pk"))
    path = partnership_path_for(model)
    return queryset if path is None else scope_queryset(queryset, user, path)


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-field filter that lists only the choices the operator may see (Django's lists
    every row of the related table: partnership B's names on partnership A's page)."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        model = field.related_model
        rows = scoped_choices(model, model._default_manager.all(), request.user)
        if ordering:
            rows = rows.order_by(*ordering)
        return [(row.pk, str(row)) for row in rows]


class PartnershipScopedAdmin:
    """A ModelAdmin (or inline) mixin, put before ModelAdmin: rows, the choices of its foreign
    keys and of its related-field filters, limited to the operator's partnerships."""

    partnership_path = "partnership"

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user, self.partnership_path)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = scoped_choices(db_field.related_model, field.queryset, request.user)
        return field

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        # Every Pilot page has this mixin: its JSON fields parse as the partner API does (a
        # deep array, NaN, NUL: a form error, not a 500).
        if isinstance(db_field, JSONField):
            kwargs.setdefault("form_class", PilotJSONField)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_list_filter(self, request):
        """Each related-field filter named by its field (``"campaign"``, ``"campaign__trigger"``)
        becomes the scoped one; filters given with their own class are left as they are."""
        return [_scoped_filter(self.model, entry) for entry in super().get_list_filter(request)]

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Another partnership's row, or none: the same 404 (Django's default redirects home
        # with "doesn't exist", which tells nothing apart but answers 302).
        raise Http404(f"No {opts.verbose_name} with this id among your partnerships")


def _scoped_filter(model, entry):
    if not isinstance(entry, str):
        return entry
    try:
        field = get_fields_from_path(model, entry)[-1]
    except (FieldDoesNotExist, LookupError):
        return entry
    if field.is_relation and (field.many_to_one or field.one_to_one):
        return (entry, ScopedRelatedFieldListFilter)
    return entry


def _crosses_many(model: type[Model], path: str) -> bool:
    for name in path.split(LOOKUP_SEP):
        if name == "pk":
            return False
        field = model._meta.get_field(name)
        if field.one_to_many or field.many_to_many:
            return True
        model = field.related_model
    return False


def admin_log_for_operator(*, request, limit: int = 10) -> list:
    """The operator's recent actions (the Pilot index) on rows they may still see: a row moved
    to, or of, another partnership is left out, and so are deletions for operators limited to
    some partnerships (what was deleted can no longer be placed)."""
    from django.contrib.admin.models import LogEntry

    user = request.user
    entries = LogEntry.objects.filter(user=user).select_related("content_type")
    if user.is_superuser:
        return list(entries[:limit])
    shown = []
    for entry in entries[: limit * 3]:
        model = entry.content_type.model_class() if entry.content_type else None
        model_admin = admin.site._registry.get(model)
        if model_admin is None or entry.is_deletion():
            continue
        if model_admin.get_queryset(request).filter(pk=entry.object_id).exists():
            shown.append(entry)
        if len(shown) == limit:
            break
    return shown
