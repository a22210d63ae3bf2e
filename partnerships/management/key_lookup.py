from django.core.management.base import CommandError

from partnerships.models import ApiKey


def api_key_by_prefix(prefix_or_key: str) -> ApiKey:
    """The key a command names by its prefix (or its whole plaintext, cut at the dot)."""
    prefix = prefix_or_key.partition(".")[0]
    api_key = ApiKey.objects.filter(prefix=prefix).first()
    if api_key is None:
        raise CommandError(f"No API key with prefix {prefix!r}")
    return api_key
