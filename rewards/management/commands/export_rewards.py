import argparse
import uuid
from contextlib import nullcontext
from functools import partial

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from config.timestamps import DAY_MESSAGE, parse_day
from partnerships.models import Partnership
from rewards.reports.exports import ExportKind, RowFilter, csv_export_start
from rewards.reports.filters import report_scope_for


def _day(value: str):
    day = parse_day(value)
    if day is None:
        raise argparse.ArgumentTypeError(f"{value!r}: {DAY_MESSAGE}")
    return day


class Command(BaseCommand):
    help = (
        "Writes a partnership's rewards (or, with --reversals, its reversals) of a range of "
        "local days as CSV, streamed in constant memory; the moment it reflects goes to stderr."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--partnership", required=True, help="The partnership's id")
        parser.add_argument("--mode", choices=["live", "test"], default="live")
        parser.add_argument("--from", dest="first_day", required=True, type=_day)
        parser.add_argument("--to", dest="last_day", required=True, type=_day)
        parser.add_argument("--campaign", help="Only this campaign (id or slug)")
        parser.add_argument("--trigger", help="Only this trigger's events (name)")
        parser.add_argument("--reversals", action="store_true", help="Reversal rows instead")
        parser.add_argument("--output", help="A file to write; default: stdout")

    def handle(self, *args, **options) -> None:
        try:
            partnership = Partnership.objects.get(pk=uuid.UUID(options["partnership"]))
            scope = report_scope_for(
                partnership=partnership,
                mode=options["mode"],
                first_day=options["first_day"],
                last_day=options["last_day"],
                campaign=options["campaign"],
                trigger=options["trigger"],
            )
        except (ValueError, Partnership.DoesNotExist) as exc:
            raise CommandError(f"No partnership {options['partnership']!r}") from exc
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        kind = ExportKind.REVERSALS if options["reversals"] else ExportKind.REWARDS
        export = csv_export_start(kind=kind, rows=RowFilter.of_scope(scope))
        path = options["output"]
        with open(path, "w", newline="", encoding="utf-8") if path else nullcontext() as file:
            write = file.write if file else partial(self.stdout.write, ending="")
            for text in export.lines():
                write(text)
        self.stderr.write(
            f"{kind} of {scope.first_day} to {scope.last_day} ({scope.mode}), "
            f"as of {export.as_of.isoformat()}"
        )
