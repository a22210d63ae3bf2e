"""What an erased user's external id becomes: a keyed hash of it.

HMAC-SHA256 with a server secret (``USER_ERASURE_SECRET``), keyed also by the partnership, so
the stored value says nothing about the id without the secret, yet the same id always maps to
the same value: the ingest and the user API find that an incoming external id was erased
(410 ``user_erased``), through the unique (partnership, external_user_id) index.
"""

import hashlib
import hmac
import uuid

from django.conf import settings

ERASED_PREFIX = "erased:"


def erased_external_id(*, partnership_id: uuid.UUID, external_user_id: str) -> str:
    message = f"{partnership_id}:{external_user_id}".encode()
    secret = settings.USER_ERASURE_SECRET.encode()
    return ERASED_PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()
