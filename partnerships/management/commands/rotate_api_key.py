import json

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from partnerships.management.key_lookup import api_key_by_prefix
from partnerships.services import api_key_rotate_audited


class Command(BaseCommand):
    help = (
        "Rotates an API key by its prefix: prints a new key (shown once) with the same "
        "partnership, mode, name, rate limit and expiry; the old one keeps working for the "
        "overlap."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("prefix")
        parser.add_argument(
            "--overlap-hours",
            type=int,
            default=24,
            help="How long the old key keeps working (0 to 168; default 24)",
        )
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts")

    def handle(self, *args, **options) -> None:
        api_key = api_key_by_prefix(options["prefix"])
        try:
            rotated = api_key_rotate_audited(
                api_key=api_key, overlap_hours=options["overlap_hours"], actor=None
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        old, new = rotated.old, rotated.new
        result = {
            "old_prefix": old.prefix,
            "old_expires_at": old.expires_at.isoformat(),
            "prefix": new.api_key.prefix,
            "api_key": new.plaintext,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(
            f"New key (shown once): {new.plaintext}\n"
            f"{old.prefix} keeps working until {old.expires_at.isoformat()}"
        )
