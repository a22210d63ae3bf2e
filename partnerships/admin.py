from django import forms
from django.contrib import admin, messages
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.utils.html import format_html
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from unfold.admin import ModelAdmin, TabularInline
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from unfold.widgets import UnfoldAdminTextareaWidget

from config.errors import ApplicationError
from config.json_input import PilotJSONField

from . import (
    pilot_user_tokens,  # noqa: F401 - registers the user tokens' page
    roles,
)
from .models import (
    ApiKey,
    AuditEntry,
    EndUser,
    Partner,
    Partnership,
    PartnershipMember,
    StaffToken,
)
from .pilot_actions import ObjectAction, ObjectActionsAdmin
from .pilot_audit import form_changes, pilot_audit
from .pilot_filters import exact_search
from .pilot_revision import MISSING, RefusedSaveAdminMixin, RevisionAdminMixin, RevisionForm
from .scoping import PartnershipScopedAdmin, ScopedRelatedFieldListFilter
from .selectors import pilot_users_for_operator
from .services import (
    API_KEY_EDITABLE,
    ATTRIBUTES_CHANGED,
    ROTATED_EXPIRY,
    ROTATION_MAX_OVERLAP_HOURS,
    EndUserBlockError,
    api_key_create_audited,
    api_key_revoke_audited,
    api_key_rotate_audited,
    api_key_update,
    end_user_attributes_replace,
    end_user_attributes_stale,
    end_user_block,
    end_user_unblock,
    partnership_save,
)
from .staff_tokens import staff_token_create, staff_token_errors, staff_token_revoke


class PartnershipInline(PartnershipScopedAdmin, TabularInline):
    model = Partnership
    partnership_path = "pk"
    fields = ("name", "status", "reward_unit")
    extra = 0
    show_change_link = True


@admin.register(Partner)
class PartnerAdmin(PartnershipScopedAdmin, ModelAdmin):
    partnership_path = "partnerships"
    list_display = ("name", "created_at")
    search_fields = ("name",)
    inlines = [PartnershipInline]


class ApiKeyInline(TabularInline):
    model = ApiKey
    fields = ("prefix", "name", "mode", "expires_at", "replaced_by", "revoked_at", "last_used_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class PartnershipMemberInline(TabularInline):
    """The Pilot users who see this partnership's reports."""

    model = PartnershipMember
    fields = ("user", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)
    extra = 0


@admin.register(Partnership)
class PartnershipAdmin(RevisionAdminMixin, PartnershipScopedAdmin, ModelAdmin):
    form = RevisionForm
    partnership_path = "pk"
    ordering = ("partner__name", "name")
    list_display = ("name", "partner", "id", "status", "reward_unit", "created_at")
    list_filter = ("status", "partner")
    search_fields = ("name", "partner__name", "id")
    readonly_fields = ("id", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("id", "partner", "name", "status")}),
        ("Rewards", {"fields": ("reward_unit", "reward_decimal_places", "time_zone")}),
        ("Events", {"fields": ("max_event_lateness_days",)}),
        ("Security", {"fields": ("allowed_cidrs", "allowed_origins")}),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )
    inlines = [ApiKeyInline, PartnershipMemberInline]

    def save_model(self, request, obj: Partnership, form, change: bool) -> None:
        partnership_save(partnership=obj, actor=request.user, expected_revision=form.loaded)


ROTATE_PERMISSIONS = ("partnerships.add_apikey", "partnerships.change_apikey")


class RotateForm(forms.Form):
    overlap_hours = forms.TypedChoiceField(
        label="The old key keeps working for",
        coerce=int,
        initial=24,
        choices=[
            (0, "No overlap: it stops now"),
            (1, "1 hour"),
            (24, "24 hours"),
            (72, "3 days"),
            (ROTATION_MAX_OVERLAP_HOURS, "7 days"),
        ],
        help_text="Then it stops (its expiry); until then both keys work.",
    )


class ApiKeyForm(forms.ModelForm):
    """A key's editable fields carry the values the page loaded (hidden), so that the save
    writes only those the operator changed: not an old value over a newer one."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            for name in API_KEY_EDITABLE:
                if name in self.fields:
                    self.fields[name].show_hidden_initial = True

    def clean(self) -> dict:
        cleaned = super().clean()
        # Rotated since the page (which showed the expiry editable) was opened: the change
        # is refused here, not dropped, and nothing else is saved with it.
        rotated = self.instance.pk is not None and self.instance.replaced_by_id is not None
        if rotated and "expires_at" in self.fields and "expires_at" in self.changed_data:
            self.add_error("expires_at", ROTATED_EXPIRY)
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(RefusedSaveAdminMixin, ObjectActionsAdmin, PartnershipScopedAdmin, ModelAdmin):
    form = ApiKeyForm
    list_display = ("prefix", "partnership", "name", "mode", "status", "expires_at", "last_used_at")
    list_filter = ("mode", "partnership")
    search_fields = ("prefix", "name", "partnership__name")
    readonly_fields = ("prefix", "created_at", "revoked_at", "last_used_at", "rotation")
    actions = ["revoke"]
    object_action_urls = (("rotate", "rotate_view"),)

    def get_fields(self, request, obj=None):
        editable = ("name", "mode", "expires_at", "rate_limit_per_second")
        if obj is None:
            return ("partnership", *editable)
        return ("prefix", "partnership", *editable, *self.readonly_fields[1:])

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # A rotated key's expiry is read-only, but not on the save of a page that showed it
        # editable (rotated meanwhile): the form must see a changed expiry to refuse it.
        shown_editable = request.method == "POST" and "initial-expires_at_0" in request.POST
        rotated = ("expires_at",) if obj.replaced_by_id and not shown_editable else ()
        return (*self.readonly_fields, "partnership", "mode", *rotated)

    @admin.display(description="Status")
    def status(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return "revoked"
        return "active" if obj.is_active else "expired"

    @admin.display(description="Rotation")
    def rotation(self, obj: ApiKey) -> str:
        lines = []
        replaces = ApiKey.objects.filter(replaced_by=obj).first()
        if replaces is not None:
            lines.append(
                format_html(
                    'Replaces <a href="{}">{}</a>, which works until {}.',
                    self.change_url(replaces),
                    replaces.prefix,
                    _when(replaces.expires_at),
                )
            )
        if obj.replaced_by_id is not None:
            lines.append(
                format_html(
                    'Replaced by <a href="{}">{}</a>; this key works until {}.',
                    self.change_url(obj.replaced_by),
                    obj.replaced_by.prefix,
                    _when(obj.expires_at),
                )
            )
        return format_html("<br>".join(["{}"] * len(lines)), *lines) if lines else "—"

    def object_actions(self, request, obj: ApiKey) -> list[ObjectAction]:
        if not all(request.user.has_perm(p) for p in ROTATE_PERMISSIONS):
            return []
        if obj.replaced_by_id is not None or not obj.is_active:
            return []
        return [ObjectAction("Rotate", self.action_url(obj, "rotate"), "autorenew")]

    def rotate_view(self, request, object_id: str):
        api_key = self.object_for_action(request, object_id, ROTATE_PERMISSIONS[1])
        if not request.user.has_perm(ROTATE_PERMISSIONS[0]):
            raise PermissionDenied(f"You need the permission {ROTATE_PERMISSIONS[0]} for this.")
        form = RotateForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                rotated = api_key_rotate_audited(
                    api_key=api_key,
                    overlap_hours=form.cleaned_data["overlap_hours"],
                    actor=request.user,
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.warning(
                    request,
                    format_html(
                        "New API key — copy it now, it will not be shown again: <code>{}</code>. "
                        "{} keeps working until {}.",
                        rotated.new.plaintext,
                        rotated.old.prefix,
                        _when(rotated.old.expires_at),
                    ),
                )
                return HttpResponseRedirect(self.change_url(rotated.new.api_key))
        return self.action_page(
            request,
            api_key,
            title=f"Rotate {api_key}",
            form=form,
            intro="A new key is issued with the same partnership, mode, name, rate limit and "
            "expiry, and shown once. The old key keeps working for the overlap you choose, "
            "then stops.",
            submit="Rotate",
            details=[("Expires", _when(api_key.expires_at) if api_key.expires_at else "never")],
            status=400 if form.errors else 200,
        )

    def save_model(self, request, obj: ApiKey, form, change: bool) -> None:
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            api_key_update(api_key=obj, changes=changes)
            pilot_audit(
                request,
                "apikey.change",
                obj,
                partnership=obj.partnership,
                mode=obj.mode,
                changes=form_changes(form),
            )
            return
        issued = api_key_create_audited(api_key=obj, actor=request.user)
        messages.warning(
            request,
            format_html(
                "New API key — copy it now, it will not be shown again: <code>{}</code>",
                issued.plaintext,
            ),
        )

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        outcomes = [
            api_key_revoke_audited(api_key=api_key, actor=request.user).revoked
            for api_key in queryset.order_by("pk")
        ]
        revoked, already = outcomes.count(True), outcomes.count(False)
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)
        if already:
            self.message_user(
                request, f"{already} already revoked: left as they were.", messages.INFO
            )


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z")


BLOCK_PERMISSION = "partnerships.block_enduser"


class BlockForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="Kept with the block and in the audit log.",
    )


class UnblockForm(forms.Form):
    """Unblocking asks for nothing but a confirmation."""


class EndUserChangeForm(forms.ModelForm):
    """A user's page carries the attributes it loaded (hidden): the partner API writes them
    too, and users have no revision, so a save is refused, not written over theirs, when they
    changed since (checked here for the form, again by the service under the row lock)."""

    loaded_attributes = PilotJSONField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.fields["loaded_attributes"].initial = self.instance.attributes

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.instance._state.adding or "attributes" not in self.changed_data:
            return cleaned
        loaded = cleaned.get("loaded_attributes")
        if loaded is None:
            # Without it, a save would overwrite whatever changed since the page was opened.
            raise forms.ValidationError(MISSING)
        if self.attributes_edited and end_user_attributes_stale(
            end_user=self.instance, loaded=loaded
        ):
            raise forms.ValidationError(ATTRIBUTES_CHANGED, code="version_conflict")
        return cleaned

    @property
    def attributes_edited(self) -> bool:
        """Whether the operator changed the attributes from those the page loaded (left as
        loaded, they are not written: whatever they are now stays)."""
        cleaned = self.cleaned_data
        return "attributes" in self.changed_data and cleaned.get("attributes") != cleaned.get(
            "loaded_attributes"
        )


@admin.register(EndUser)
class EndUserAdmin(RefusedSaveAdminMixin, ObjectActionsAdmin, PartnershipScopedAdmin, ModelAdmin):
    """A partner's user (Benji's member page): attributes and blocking here; their events,
    rewards and balance are added by the apps that own them (rewards/admin.py)."""

    list_display = ("external_user_id", "id", "partnership", "blocked", "created_at")
    list_filter = (("partnership", ScopedRelatedFieldListFilter),)
    # Shows the search box; get_search_results compares exactly (the unique (partnership,
    # external_user_id) index and the primary key).
    search_fields = ("external_user_id", "id")
    search_help_text = "Exact: the partner's id for the user, or our id."
    show_full_result_count = False
    # The partnership and the partner's id for the user are its identity: renaming it would
    # split one user's history (and web processes remember which user an external id is);
    # moving it to another partnership would start its per-user caps there again (an erased
    # one's too: its pseudonym is of this partnership) and show its rewards to that partner.
    readonly_fields = ("id", "partnership", "external_user_id", "created_at", "block_state")
    fieldsets = (
        (None, {"fields": ("id", "partnership", "external_user_id", "created_at")}),
        ("Blocking", {"fields": ("block_state",)}),
        ("Attributes", {"fields": ("attributes", "loaded_attributes")}),
    )
    form = EndUserChangeForm
    object_action_urls = (("block", "block_view"), ("unblock", "unblock_view"))

    def save_model(self, request, obj: EndUser, form, change: bool) -> None:
        """A new user is created as the form has it; an existing one's attributes only are
        written, and only if the operator changed them (never its partnership or external
        id, nor a block or erasure committed meanwhile)."""
        if not change:
            super().save_model(request, obj, form, change)
        elif form.attributes_edited:
            end_user_attributes_replace(
                end_user=obj,
                attributes=form.cleaned_data["attributes"],
                loaded=form.cleaned_data["loaded_attributes"],
            )

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ("id", "created_at", "block_state")

    def get_search_results(self, request, queryset, search_term):
        found = exact_search(
            queryset, search_term, uuid_fields=("pk",), text_fields=("external_user_id",)
        )
        return found, False

    @admin.display(description="Blocked", boolean=True)
    def blocked(self, user: EndUser) -> bool:
        return user.blocked_at is not None

    @admin.display(description="Status")
    def block_state(self, user: EndUser) -> str:
        if user.blocked_at is None:
            return "Not blocked: earns rewards."
        return format_html(
            "<strong>Blocked</strong> since {} by {}: {}. Every campaign decides "
            "<code>user_blocked</code> for their events; they earn nothing until unblocked.",
            user.blocked_at.strftime("%Y-%m-%d %H:%M %Z"),
            user.blocked_by or "someone since removed",
            user.blocked_reason,
        )

    def object_actions(self, request, obj: EndUser) -> list[ObjectAction]:
        if not request.user.has_perm(BLOCK_PERMISSION):
            return []
        if obj.blocked_at is None:
            return [ObjectAction("Block", self.action_url(obj, "block"), "block")]
        return [ObjectAction("Unblock", self.action_url(obj, "unblock"), "lock_open")]

    def block_view(self, request, object_id: str):
        user = self.object_for_action(request, object_id, BLOCK_PERMISSION)
        form = BlockForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                end_user_block(
                    end_user=user, operator=request.user, reason=form.cleaned_data["reason"]
                )
            except EndUserBlockError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{user} is blocked: they earn nothing until unblocked.")
                return HttpResponseRedirect(self.change_url(user))
        return self.action_page(
            request,
            user,
            title=f"Block {user}",
            form=form,
            intro="From now on every campaign decides “user blocked” for this user's events "
            "and issues nothing. Rewards already issued stand (reverse them if needed).",
            submit="Block",
            status=400 if form.errors else 200,
        )

    def unblock_view(self, request, object_id: str):
        user = self.object_for_action(request, object_id, BLOCK_PERMISSION)
        form = UnblockForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                end_user_unblock(end_user=user, operator=request.user)
            except EndUserBlockError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{user} is unblocked: they earn rewards again.")
                return HttpResponseRedirect(self.change_url(user))
        return self.action_page(
            request,
            user,
            title=f"Unblock {user}",
            form=form,
            intro="Their next events are evaluated as anyone's; events decided while blocked "
            "stay as they were.",
            submit="Unblock",
            details=[("Blocked because", user.blocked_reason or "—")],
            status=400 if form.errors else 200,
        )


@admin.register(PartnershipMember)
class PartnershipMemberAdmin(PartnershipScopedAdmin, ModelAdmin):
    """Who sees which partnership in Pilot (``partnerships_for_operator``)."""

    list_display = ("user", "partnership", "created_at")
    list_filter = ("partnership",)
    search_fields = ("user__username", "partnership__name")
    autocomplete_fields = ("user", "partnership")
    readonly_fields = ("created_at",)

    def save_model(self, request, obj: PartnershipMember, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        action = "member.change" if change else "member.add"
        pilot_audit(request, action, obj, partnership=obj.partnership, changes=form_changes(form))

    def delete_model(self, request, obj: PartnershipMember) -> None:
        pilot_audit(request, "member.remove", obj, partnership=obj.partnership)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for member in queryset.select_related("partnership", "user"):
            pilot_audit(request, "member.remove", member, partnership=member.partnership)
        super().delete_queryset(request, queryset)


# --- Pilot's own users, in the same look, with the partnerships they see ----------------------


class MembershipInline(PartnershipScopedAdmin, TabularInline):
    model = PartnershipMember
    fields = ("partnership", "created_at")
    readonly_fields = ("created_at",)
    extra = 0
    verbose_name_plural = "Partnerships this user sees in Pilot"


admin.site.unregister(User)
admin.site.unregister(Group)


class PilotUserChangeForm(UserChangeForm):
    """A user's page. Only a superuser gives a role that approves campaigns (Admin's, or any
    holding ``campaigns.approve_campaign``): an Admin who could would create a second account
    to approve their own changes. ``by_superuser`` is set per request (``UserAdmin.get_form``)."""

    by_superuser = False

    def clean_groups(self):
        groups = self.cleaned_data["groups"]
        if self.by_superuser:
            return groups
        held = self.instance.groups.all() if self.instance.pk else Group.objects.none()
        refused = (
            groups.exclude(pk__in=held.values("pk"))
            .filter(
                Q(name=roles.ADMIN)
                | Q(
                    permissions__content_type__app_label="campaigns",
                    permissions__codename="approve_campaign",
                )
            )
            .distinct()
        )
        if refused:
            names = ", ".join(f"“{group.name}”" for group in refused)
            raise forms.ValidationError(
                f"Only a superuser may give {names}: it approves campaigns, and four eyes "
                "needs approvers no one else controls."
            )
        return groups


@admin.register(User)
class UserAdmin(auth_admin.UserAdmin, ModelAdmin):
    """Pilot's users. An operator who is not a superuser sees those wholly inside their
    partnerships (``pilot_users_for_operator``), cannot make anyone a superuser, give a role
    that approves campaigns, or set permissions one by one."""

    form = PilotUserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    inlines = [MembershipInline]

    def get_queryset(self, request):
        users = pilot_users_for_operator(user=request.user)
        return super().get_queryset(request).filter(pk__in=users.values("pk"))

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return fields
        return (*fields, "is_superuser", "user_permissions")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            return form  # the add form: a name and a password, no roles
        return type(form.__name__, (form,), {"by_superuser": request.user.is_superuser})

    def save_model(self, request, obj, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        flags = {
            name: values
            for name, values in form_changes(form).items()
            if name in ("is_active", "is_staff", "is_superuser")
        }
        if flags:
            pilot_audit(request, "user.change", obj, changes=flags)

    def save_related(self, request, form, formsets, change: bool) -> None:
        """Roles given or taken (the groups) and partnerships added or removed (the inline)
        go to the audit log, compared before and after the save."""
        user = form.instance
        before = _roles_and_memberships(user) if change else (set(), set())
        super().save_related(request, form, formsets, change)
        after = _roles_and_memberships(user)
        for role in sorted(after[0] - before[0]):
            pilot_audit(request, "role.grant", user, changes={"role": role})
        for role in sorted(before[0] - after[0]):
            pilot_audit(request, "role.revoke", user, changes={"role": role})
        for partnership in Partnership.objects.filter(pk__in=after[1] - before[1]):
            pilot_audit(request, "member.add", user, partnership=partnership)
        for partnership in Partnership.objects.filter(pk__in=before[1] - after[1]):
            pilot_audit(request, "member.remove", user, partnership=partnership)


def _roles_and_memberships(user) -> tuple[set, set]:
    return (
        set(user.groups.values_list("name", flat=True)),
        set(PartnershipMember.objects.filter(user=user).values_list("partnership_id", flat=True)),
    )


@admin.register(Group)
class GroupAdmin(auth_admin.GroupAdmin, ModelAdmin):
    """The roles (``partnerships.roles``). A group is shared by every partnership, so only a
    superuser changes one; an Admin gives roles on the user's page."""

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


class SuperusersOnly:
    """Second-factor devices belong to no partnership: only superusers see them, to delete a
    lost one (its operator enrols again at the next sign-in). Keys stay hidden
    (OTP_ADMIN_HIDE_SENSITIVE_DATA)."""

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


for _model in (TOTPDevice, StaticDevice):
    _registered = type(admin.site._registry[_model])
    admin.site.unregister(_model)
    admin.site.register(_model, type(_registered.__name__, (SuperusersOnly, _registered), {}))


# The index's recent actions, limited to the operator's partnerships.
admin.site.index_template = "partnerships/pilot_index.html"


@admin.register(AuditEntry)
class AuditEntryAdmin(PartnershipScopedAdmin, ModelAdmin):
    """The audit log: read only, for everyone who may view it."""

    list_display = ("at", "actor_name", "action", "target_repr", "partnership", "mode")
    list_filter = ("action", "mode")
    date_hierarchy = "at"
    fields = (
        "at",
        "actor_name",
        "action",
        "partnership",
        "mode",
        "target_type",
        "target_id",
        "target_repr",
        "changes",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- Staff tokens: the management API's credentials ------------------------------------------


class StaffTokenForm(forms.ModelForm):
    """A new token: the service's rules, checked as the form is (shown at their fields)."""

    role = forms.ChoiceField(choices=[(role, role) for role in roles.ROLES])

    class Meta:
        model = StaffToken
        fields = ("name", "role", "partnership", "expires_at")

    creator = None  # set per request (StaffTokenAdmin.get_form)

    def clean(self) -> dict:
        cleaned = super().clean()
        errors = staff_token_errors(
            creator=self.creator,
            role=cleaned.get("role", ""),
            partnership=cleaned.get("partnership"),
            expires_at=cleaned.get("expires_at"),
        )
        for field, message in errors.items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)
        return cleaned


@admin.register(StaffToken)
class StaffTokenAdmin(PartnershipScopedAdmin, ModelAdmin):
    """Management API tokens. Each acts as whoever created it (the audit log names both); an
    operator sees the tokens they created, a superuser all. Shown once; revoked, never edited."""

    form = StaffTokenForm
    list_display = ("prefix", "name", "role", "partnership", "created_by", "status", "last_used_at")
    list_filter = ("role",)
    search_fields = ("prefix", "name")
    actions = ["revoke"]

    def get_queryset(self, request):
        tokens = ModelAdmin.get_queryset(self, request).select_related("partnership", "created_by")
        return tokens if request.user.is_superuser else tokens.filter(created_by=request.user)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "role", "partnership", "expires_at")
        return (
            *("prefix", "name", "role", "partnership", "created_by", "created_at"),
            *("expires_at", "revoked_at", "last_used_at"),
        )

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"creator": request.user})

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    @admin.display(description="Status")
    def status(self, token: StaffToken) -> str:
        if token.revoked_at:
            return "revoked"
        return "active" if token.is_active else "expired"

    def save_model(self, request, obj: StaffToken, form, change: bool) -> None:
        issued = staff_token_create(
            creator=request.user,
            name=obj.name,
            role=obj.role,
            partnership=obj.partnership,
            expires_at=obj.expires_at,
        )
        obj.pk, obj.prefix = issued.token.pk, issued.token.prefix
        messages.warning(
            request,
            format_html(
                "New staff token — copy it now, it will not be shown again: <code>{}</code>",
                issued.plaintext,
            ),
        )

    @admin.action(description="Revoke selected staff tokens", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        for token in queryset:
            staff_token_revoke(token=token, actor=request.user)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
