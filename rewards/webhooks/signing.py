"""Each request carries ``Webhook-Signature: v1=<hex>``, the HMAC-SHA256 of
``f"{timestamp}.{body}"`` with the endpoint's secret (two after a rotation)."""

import hashlib
import hmac
import secrets


def webhook_secret_generate() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"
