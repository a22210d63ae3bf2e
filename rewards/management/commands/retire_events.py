from django.core.management.base import BaseCommand, CommandError

from rewards.services.retention import retention_run


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise CommandError(f"Not a positive whole number: {value!r}")
    return number


class Command(BaseCommand):
    help = (
        "Retires trigger events older than EVENT_RETENTION_DAYS (finished, without rewards) "
        "and webhook deliveries older than WEBHOOK_DELIVERY_RETENTION_DAYS (done), in short "
        "batches; what beat runs every RETENTION_INTERVAL. --dry-run counts instead."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count, delete nothing")
        parser.add_argument("--batch-size", help="Rows per transaction (RETENTION_BATCH_SIZE)")
        parser.add_argument("--seconds", help="Stop after this long (RETENTION_RUN_SECONDS)")

    def handle(self, *args, **options) -> None:
        batch_size = _positive(options["batch_size"]) if options["batch_size"] else None
        seconds = _positive(options["seconds"]) if options["seconds"] else None
        report = retention_run(dry_run=options["dry_run"], batch_size=batch_size, seconds=seconds)
        verb = "would retire" if options["dry_run"] else "retired"
        lines = [
            f"Events received and occurred before {report.events_cutoff.isoformat()}:",
            f"  {verb}: {report.events_retired}"
            + ("" if options["dry_run"] else f" (with {report.reversals_retired} reversals)"),
            f"  kept, with rewards: {report.events_kept_rewarded}",
            f"  kept, not finished: {report.events_kept_unfinished}",
            f"  skipped, in use (next run): {report.events_skipped_locked}",
            f"Webhook deliveries done and created before {report.deliveries_cutoff.isoformat()}:",
            f"  {verb}: {report.deliveries_retired}",
        ]
        if not report.complete:
            lines.append("Stopped at the time limit; run it again to go on.")
        self.stdout.write("\n".join(lines))
