import ipaddress
import re
import uuid
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

ORIGIN_PATTERN = r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?"


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)")


def validate_origin(value: str) -> None:
    """A browser origin as the Origin header sends it: scheme, host and optional port."""
    if not re.fullmatch(ORIGIN_PATTERN, value):
        raise ValidationError(
            f"{value!r} is not an origin: scheme, host and optional port, no path "
            "(e.g. https://app.example.com)"
        )


def validate_cidr(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValidationError(f"{value!r} is not an IP address or CIDR block") from exc


def default_user_attribute_schema() -> dict:
    return {"type": "object"}


class Partner(models.Model):
    """The company: a bank, a fintech, a merchant, an app."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Partnership(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="partnerships")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    reward_unit = models.CharField(
        max_length=40, default="Points", help_text='e.g. "Points", "USD"'
    )
    reward_decimal_places = models.PositiveSmallIntegerField(
        default=2,
        # Amounts are stored with 6 decimal places: a finer unit could not be stored as shown.
        validators=[MaxValueValidator(6)],
        help_text="Rewards are rounded to this many decimal places (at most 6).",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="IANA time zone of the calendar days, weeks and months of per-user caps, "
        "e.g. America/New_York.",
    )
    # How late an event may arrive: occurred_at older than this is refused (422
    # event_too_late), and a campaign stays a candidate this long after its end. NULL: no bound
    # (partnerships created before the bound existed keep accepting any lateness until they opt in).
    max_event_lateness_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(366)],
        help_text="Events whose occurred_at is older than this many days are refused "
        "(1 to 366; empty: no bound). A campaign still judges late events this long after it ends.",
    )
    allowed_cidrs = ArrayField(
        models.CharField(max_length=64, validators=[validate_cidr]),
        default=list,
        blank=True,
        help_text="IP allow-list: comma-separated addresses or CIDR blocks. Empty allows any IP.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Browser apps calling with a user token (issue 12): the origins CORS lets in.
    allowed_origins = ArrayField(
        models.CharField(max_length=200, validators=[validate_origin]),
        default=list,
        blank=True,
        help_text="Origins of browser apps that call with user tokens (CORS), comma-separated, "
        "e.g. https://app.example.com. Empty: no browser app.",
    )
    # JSON Schema (draft 2020-12) of end users' attributes: the user API validates them with it,
    # and campaign rules type-check ``user.<name>`` against its properties. Edited in Pilot with
    # the trigger schemas' field editor (campaigns/user_schema.py, which checks it there).
    user_attribute_schema = models.JSONField(
        default=default_user_attribute_schema,
        db_default=models.Value({"type": "object"}, models.JSONField()),
        blank=True,
        help_text="JSON Schema (draft 2020-12) that end users' attributes must match.",
    )
    # Bumped by every write of its services (config.revisions): the management API's ETag.
    revision = models.PositiveIntegerField(default=1, db_default=1, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "name"], name="uniq_partnership_name"),
        ]

    def __str__(self) -> str:
        return f"{self.partner} / {self.name}"

    @property
    def unit_step(self) -> Decimal:
        """The smallest amount of the reward unit: Decimal("0.01") for 2 decimal places."""
        return Decimal(1).scaleb(-self.reward_decimal_places)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class ApiKey(models.Model):
    class Mode(models.TextChoices):
        LIVE = "live", "Live"
        TEST = "test", "Test"

    partnership = models.ForeignKey(Partnership, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.LIVE)
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    # SHA-256 of the whole key; the secret has 256 bits of entropy, so a slow hash adds nothing.
    hashed_key = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    rate_limit_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per second; empty uses the service default."
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The key a rotation issued in its place (``partnerships.keys_rotation``); this one keeps
    # working until its expires_at, the end of the overlap.
    replaced_by = models.OneToOneField(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="replaces",
    )

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return self.prefix

    def clean(self) -> None:
        # A new key that has already expired could never be used: a mistake, said at once.
        adding = self._state.adding
        if adding and self.expires_at is not None and self.expires_at <= timezone.now():
            raise ValidationError({"expires_at": "In the future (or empty: it never expires)"})

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class EndUser(models.Model):
    """A partner's user, created lazily on the partner's first event for an external id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partnership = models.ForeignKey(Partnership, on_delete=models.CASCADE, related_name="users")
    external_user_id = models.CharField(max_length=255)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A blocked user earns nothing (its own decision outcome) until unblocked.
    blocked_at = models.DateTimeField(null=True, blank=True, editable=False)
    blocked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    # db_default: inserts that name no such column (ingest's, older code during a deploy) work.
    blocked_reason = models.CharField(
        max_length=500, blank=True, default="", db_default="", editable=False
    )
    # Erased (GDPR-style, rewards.services.erasure): the row stays, for the rewards and events
    # that reference it, but its external id is replaced by a keyed hash of it
    # (``partnerships.pseudonyms.erased_external_id``) and its attributes are gone.
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "end user"
        permissions = [
            ("block_enduser", "Can block and unblock end users"),
            ("erase_enduser", "Can erase end users (GDPR)"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["partnership", "external_user_id"], name="uniq_end_user_external_id"
            ),
        ]

    def __str__(self) -> str:
        return self.external_user_id


class PartnershipMember(models.Model):
    """A Pilot user's membership of a partnership: what they see in Pilot's reports
    (``partnerships.selectors.partnerships_for_operator``). Roles come with issue 11."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="partnership_memberships"
    )
    partnership = models.ForeignKey(Partnership, on_delete=models.CASCADE, related_name="members")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "partnership member"
        constraints = [
            models.UniqueConstraint(fields=["user", "partnership"], name="uniq_partnership_member"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.partnership}"


class AuditEntry(models.Model):
    """What an operator did in Pilot, outside a campaign's own history (``CampaignVersion``):
    keys, secrets, reversals, retries, blocks, roles. Append-only
    (``partnerships.services.audit_record``)."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150)  # kept when the user is deleted
    action = models.CharField(max_length=64)  # a stable code, e.g. "reward.reverse"
    partnership = models.ForeignKey(
        Partnership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    mode = models.CharField(max_length=8, blank=True)
    target_type = models.CharField(max_length=100, blank=True)  # "app_label.model"
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)  # {"field": [before, after]} or details

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["partnership", "-at"], name="audit_partnership_idx"),
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target_repr}"


class UserToken(models.Model):
    """A short-lived token one partner key issued for one of its users, for a client-side app
    (``partnerships.user_tokens``). The signed JWT carries this row's id; the row is read on
    every request, so a revocation holds from the next one."""

    SCOPE_READ = "rewards:read"  # the user's rewards and balance
    SCOPE_TRIGGER = "trigger:"  # + a client-sendable trigger's name

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partnership = models.ForeignKey(Partnership, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="user_tokens")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="tokens")
    mode = models.CharField(max_length=8, choices=ApiKey.Mode.choices)
    scopes = ArrayField(models.CharField(max_length=80))
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "user token"
        indexes = [models.Index(fields=["end_user", "-created_at"], name="user_token_user_idx")]

    def __str__(self) -> str:
        return f"token {self.id} of {self.end_user_id}"


class StaffToken(models.Model):
    """A credential of the management API (``/management/v1/``), never a partner key: a role
    (one of Pilot's five), optionally one partnership, and the Pilot user it acts as
    (``created_by``: four eyes and the audit log see that user). Only a SHA-256 of the token is
    kept; the plaintext (``staff_<8 chars>.<secret>``) is shown once."""

    name = models.CharField(max_length=100)
    role = models.CharField(max_length=32)  # partnerships.roles.ROLES
    partnership = models.ForeignKey(
        Partnership,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="staff_tokens",
        help_text="Empty: every partnership its creator sees.",
    )
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    hashed_token = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_tokens"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "staff token"

    def __str__(self) -> str:
        return f"{self.prefix} ({self.name})"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
