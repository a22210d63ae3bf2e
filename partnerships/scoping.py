"""What a Pilot user sees is limited to their partnerships: one mixin for every admin page.

``partnerships.selectors.partnerships_for_operator`` says which partnerships a user may see;
this applies it to a ModelAdmin's rows (``partnership_path``: the lookup from the model to its
partnership) and to the choices of its foreign keys.
"""

from django.contrib.admin import RelatedFieldListFilter
from django.db.models import QuerySet
from django.http import Http404

from .models import Partnership
from .selectors import partnerships_for_operator


def scope_queryset(queryset: QuerySet, user, partnership_path: str) -> QuerySet:
    """The rows of ``queryset`` whose partnership (``partnership_path``) the user may see."""
    if user.is_active and user.is_superuser:
        return queryset
    allowed = partnerships_for_operator(user=user).values("pk")
    return queryset.filter(**{f"{partnership_path}__in": allowed})


class PartnershipScopedAdmin:
    """A ModelAdmin mixin (put it before ModelAdmin): rows, and the partnership choices of
    its forms, limited to the operator's partnerships."""

    partnership_path = "partnership"

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user, self.partnership_path)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and db_field.related_model is Partnership:
            field.queryset = partnerships_for_operator(user=request.user)
        elif field is not None and _has_partnership(db_field.related_model):
            field.queryset = scope_queryset(field.queryset, request.user, "partnership")
        return field

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Another partnership's row, or none: the same 404 (Django's default redirects home
        # with "doesn't exist", which tells nothing apart but answers 302).
        raise Http404(f"No {opts.verbose_name} with this id among your partnerships")


class ScopedRelatedFilter(RelatedFieldListFilter):
    """A list filter on a foreign key whose choices are the operator's partnerships, or rows
    of them (a trigger, a campaign): read from the related table, never from the big one."""

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        if related is Partnership:
            rows = partnerships_for_operator(user=request.user)
        else:
            rows = scope_queryset(related._default_manager.all(), request.user, "partnership")
        ordering = self.field_admin_ordering(field, request, model_admin)
        return [(row.pk, str(row)) for row in rows.order_by(*ordering)]


def _has_partnership(model) -> bool:
    return any(
        getattr(field, "related_model", None) is Partnership and field.name == "partnership"
        for field in model._meta.get_fields()
    )
