import json

from django.core.management.base import BaseCommand

from partnerships.management.key_lookup import api_key_by_prefix
from partnerships.services import api_key_revoke_audited


class Command(BaseCommand):
    help = "Revokes an API key by its prefix (e.g. pk_live_ab12cd34); audited as apikey.revoke."

    def add_arguments(self, parser) -> None:
        parser.add_argument("prefix")
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts")

    def handle(self, *args, **options) -> None:
        api_key = api_key_revoke_audited(
            api_key=api_key_by_prefix(options["prefix"]), actor=None
        ).key
        result = {"prefix": api_key.prefix, "revoked_at": api_key.revoked_at.isoformat()}
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"Revoked {api_key.prefix}")
