"""What a Pilot user sees is limited to their partnerships: one mixin for every admin page.

``partnerships.selectors.partnerships_for_operator`` says which partnerships a user may see;
this applies it to a ModelAdmin's rows (``partnership_path``: the lookup from the model to its
partnership) and to the choices of its foreign keys.
"""

from django.db.models import QuerySet

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


def _has_partnership(model) -> bool:
    return any(
        getattr(field, "related_model", None) is Partnership and field.name == "partnership"
        for field in model._meta.get_fields()
    )
