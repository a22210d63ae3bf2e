"""System checks of the partnerships app's settings."""

from django.conf import settings
from django.core import checks

ERASURE_SECRET_MISSING = checks.Error(
    "USER_ERASURE_SECRET is not set: erased users' external ids would be keyed with SECRET_KEY, "
    "and rotating SECRET_KEY would make every erased external id usable again.",
    hint="Set USER_ERASURE_SECRET to a long random value, once, and never change it (a "
    "deployment that erased users with it unset: set it to the SECRET_KEY used until now).",
    id="partnerships.E001",
)


@checks.register(checks.Tags.security)
def user_erasure_secret_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Production (DEBUG off, a SECRET_KEY of its own) must set the erasure secret."""
    if settings.DEBUG or settings.USER_ERASURE_SECRET:
        return []
    if settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY:
        return []  # development and tests; check --deploy flags that key (security.W009)
    return [ERASURE_SECRET_MISSING]
