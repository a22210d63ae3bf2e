import json
import uuid
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from partnerships.management.days import expiry_days
from partnerships.models import ApiKey, Partnership
from partnerships.services import api_key_create_audited


class Command(BaseCommand):
    help = "Creates an API key for a partnership and prints it once; audited as apikey.create."

    def add_arguments(self, parser) -> None:
        parser.add_argument("partnership_id")
        parser.add_argument("--test", action="store_true", help="A test-mode key")
        parser.add_argument("--expires-in", type=expiry_days, metavar="DAYS")
        parser.add_argument("--name", default="")
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts")

    def handle(self, *args, **options) -> None:
        try:
            partnership = Partnership.objects.get(pk=uuid.UUID(options["partnership_id"]))
        except (ValueError, Partnership.DoesNotExist) as exc:
            raise CommandError(f"No partnership {options['partnership_id']!r}") from exc
        days = options["expires_in"]
        api_key = ApiKey(
            partnership=partnership,
            mode=ApiKey.Mode.TEST if options["test"] else ApiKey.Mode.LIVE,
            name=options["name"],
            expires_at=timezone.now() + timedelta(days=days) if days else None,
        )
        try:
            issued = api_key_create_audited(api_key=api_key, actor=None)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        result = {"api_key": issued.plaintext, "prefix": issued.api_key.prefix}
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"API key (shown once): {result['api_key']}")
