"""Partner API keys: ``pk_<mode>_<8 chars>.<secret>``; only a SHA-256 of the whole key is kept."""

import hashlib
import hmac
import secrets
import string

PREFIX_ALPHABET = string.ascii_lowercase + string.digits


def generate(mode: str) -> tuple[str, str, str]:
    """Returns (plaintext key, prefix, hash)."""
    prefix = f"pk_{mode}_" + "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(8))
    plaintext = f"{prefix}.{secrets.token_urlsafe(32)}"
    return plaintext, prefix, hash_key(plaintext)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def split(plaintext: str) -> str | None:
    """The prefix of a well-formed key, or None."""
    prefix, dot, secret = plaintext.partition(".")
    if not dot or not secret or not prefix.startswith(("pk_live_", "pk_test_")) or len(prefix) > 32:
        return None
    return prefix


def matches(plaintext: str, hashed: str) -> bool:
    return hmac.compare_digest(hash_key(plaintext), hashed)
