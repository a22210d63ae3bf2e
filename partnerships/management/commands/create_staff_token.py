import json
import uuid

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from partnerships import roles
from partnerships.management.days import expiry_days
from partnerships.models import Partnership
from partnerships.staff_tokens import staff_token_create


class Command(BaseCommand):
    help = "Creates a management API staff token acting as a Pilot user, and prints it once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True, help="The Pilot user the token acts as")
        parser.add_argument("--role", required=True, choices=roles.ROLES)
        parser.add_argument("--name", required=True, help="What uses the token")
        parser.add_argument("--partnership", help="Limit it to this partnership (an id)")
        parser.add_argument("--expires-in", type=expiry_days, metavar="DAYS")
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts")

    def handle(self, *args, **options) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No Pilot user {options['user']!r}")
        partnership = None
        if options["partnership"]:
            try:
                partnership = Partnership.objects.get(pk=uuid.UUID(options["partnership"]))
            except (ValueError, Partnership.DoesNotExist) as exc:
                raise CommandError(f"No partnership {options['partnership']!r}") from exc
        try:
            issued = staff_token_create(
                creator=user,
                name=options["name"],
                role=options["role"],
                partnership=partnership,
                expires_in_days=options["expires_in"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        result = {"staff_token": issued.plaintext, "prefix": issued.token.prefix}
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"Staff token (shown once): {result['staff_token']}")
