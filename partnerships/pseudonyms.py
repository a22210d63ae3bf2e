"""What an erased user's external id becomes: a keyed hash of it.

HMAC-SHA256 with a server secret (``USER_ERASURE_SECRET``), keyed also by the partnership, so
the stored value says nothing about the id without the secret, yet the same id always maps to
the same value: the ingest and the user API find that an incoming external id was erased
(410 ``user_erased``), through the unique (partnership, external_user_id) index.

External ids starting with ``erased:`` are the pseudonyms' own: a partner cannot name a user
by one (422 at ``external_user_id``), so the erased row is reachable by no external id.
"""

import hashlib
import hmac
import uuid

from django.conf import settings

from config.errors import ApplicationError, ErrorCode, field_error, validation_error

ERASED_PREFIX = "erased:"


def erased_external_id(*, partnership_id: uuid.UUID, external_user_id: str) -> str:
    message = f"{partnership_id}:{external_user_id}".encode()
    return ERASED_PREFIX + hmac.new(_secret(), message, hashlib.sha256).hexdigest()


def _secret() -> bytes:
    # Unset, SECRET_KEY: only where the system check allows it (DEBUG, or the development key).
    return (settings.USER_ERASURE_SECRET or settings.SECRET_KEY).encode()


def external_user_id_errors(external_user_id: str) -> list[dict]:
    """The problems of an external id named in a path: its bounds, a NUL (which PostgreSQL
    text cannot hold), or a pseudonym's prefix."""
    if not 1 <= len(external_user_id) <= 255 or "\x00" in external_user_id:
        return [field_error("external_user_id", "invalid", "1 to 255 characters, no NUL")]
    return reserved_external_id_errors(external_user_id)


def external_user_id_check(external_user_id: str) -> None:
    errors = external_user_id_errors(external_user_id)
    if errors:
        raise validation_error(errors)


def reserved_external_id_errors(external_user_id, field: str = "external_user_id") -> list[dict]:
    """An external id a partner may not name a user by: an erased user's pseudonym."""
    if isinstance(external_user_id, str) and external_user_id.startswith(ERASED_PREFIX):
        message = f"External ids starting with {ERASED_PREFIX!r} are reserved for erased users"
        return [field_error(field, "reserved", message)]
    return []


def user_erased() -> ApplicationError:
    return ApplicationError(
        410,
        ErrorCode.USER_ERASED,
        "This user was erased: their external id accepts no events or attributes any more",
    )
