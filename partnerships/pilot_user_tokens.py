"""Pilot's page of user tokens: the short-lived credentials partner backends issued to their
client-side apps (``partnerships.user_tokens``). Support and developers find a user's tokens
(search by the user's exact external id or a token id), see each one's key, mode, scopes and
expiry, and revoke them (``user_token_revoke_as``, as the partner API does): refused from the
app's next request on, audited. Tokens are issued by partner backends only, never here, and
are never edited."""

from django.contrib import admin, messages
from django.utils import timezone
from unfold.admin import ModelAdmin

from .models import UserToken
from .pilot_filters import exact_search
from .scoping import PartnershipScopedAdmin, ScopedRelatedFieldListFilter
from .user_tokens import user_token_revoke_as

FIELDS = (
    "id",
    "partnership",
    "end_user",
    "mode",
    "scopes",
    "api_key",
    "created_at",
    "expires_at",
    "revoked_at",
)


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("expired", "expired"), ("revoked", "revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True, expires_at__gt=now)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(UserToken)
class UserTokenAdmin(PartnershipScopedAdmin, ModelAdmin):
    list_display = ("id", "user", "partnership", "mode", "scope_list", "expires_at", "status")
    list_filter = (TokenStatusFilter, "mode", ("partnership", ScopedRelatedFieldListFilter))
    # Shows the search box; get_search_results compares exactly (indexed columns).
    search_fields = ("end_user__external_user_id", "id")
    fields = FIELDS
    readonly_fields = FIELDS
    list_select_related = ("end_user", "partnership")
    ordering = ("-created_at",)
    actions = ["revoke"]

    def get_search_results(self, request, queryset, search_term):
        found = exact_search(
            queryset,
            search_term,
            uuid_fields=("pk",),
            text_fields=("end_user__external_user_id",),
        )
        return found, False

    @admin.display(description="User", ordering="end_user__external_user_id")
    def user(self, token: UserToken) -> str:
        return token.end_user.external_user_id

    @admin.display(description="Scopes")
    def scope_list(self, token: UserToken) -> str:
        return ", ".join(token.scopes)

    @admin.display(description="Status")
    def status(self, token: UserToken) -> str:
        if token.revoked_at is not None:
            return "revoked"
        return "active" if token.expires_at > timezone.now() else "expired"

    def has_add_permission(self, request) -> bool:
        return False  # a partner backend issues them (POST .../users/{id}/tokens)

    def has_change_permission(self, request, obj=None) -> bool:
        # The change permission is the revoke action's; a token's page is read-only.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked, never deleted: the audit log points at it

    @admin.action(description="Revoke selected user tokens", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        revocations = [
            user_token_revoke_as(token_id=pk, actor=request.user)
            for pk in queryset.order_by("pk").values_list("pk", flat=True)
        ]
        revoked = sum(revocation.revoked for revocation in revocations)
        self.message_user(request, f"Revoked {revoked} user token(s).", messages.SUCCESS)
        if already := len(revocations) - revoked:
            self.message_user(
                request, f"{already} already revoked: left as they were.", messages.INFO
            )
