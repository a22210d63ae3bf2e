import json

from django.core.management.base import BaseCommand, CommandError

from partnerships.models import StaffToken
from partnerships.staff_tokens import staff_token_revoke


class Command(BaseCommand):
    help = "Revokes a management API staff token by its prefix (e.g. staff_ab12cd34)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("prefix")
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts")

    def handle(self, *args, **options) -> None:
        prefix = options["prefix"].partition(".")[0]
        token = StaffToken.objects.filter(prefix=prefix).first()
        if token is None:
            raise CommandError(f"No staff token with prefix {prefix!r}")
        token = staff_token_revoke(token=token, actor=None)
        result = {"prefix": token.prefix, "revoked_at": token.revoked_at.isoformat()}
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"Revoked {token.prefix}")
