from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from partnerships.models import Partnership
from rewards.reports.rebuild import reports_rebuild


class Command(BaseCommand):
    help = (
        "Recounts the report aggregates of partnerships from their rewards, reversals and "
        "events (after an upgrade that old processes overlapped). Stop the workers first."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("partnership_ids", nargs="*", help="Default: every partnership")

    def handle(self, *args, **options) -> None:
        ids = options["partnership_ids"] or list(Partnership.objects.values_list("id", flat=True))
        try:
            known = {
                str(pk)
                for pk in Partnership.objects.filter(pk__in=ids).values_list("id", flat=True)
            }
        except ValidationError as error:
            raise CommandError(f"Not a partnership id: {error.messages[0]}") from None
        unknown = sorted(set(map(str, ids)) - known)
        if unknown:
            raise CommandError(f"No such partnership: {', '.join(unknown)}")
        reports_rebuild(partnership_ids=ids)
        self.stdout.write(f"Rebuilt the report aggregates of {len(ids)} partnership(s).")
