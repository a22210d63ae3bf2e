import json

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from rewards.configuration.cli import (
    actor_named,
    command_error,
    document_read,
    partnership_named,
    plan_lines,
)
from rewards.configuration.services import configuration_apply


class Command(BaseCommand):
    help = (
        "Applies a configuration document (FILE, or - for stdin) atomically, as --actor: "
        "nothing if any object fails. Refused if the configuration changed since the plan "
        "whose fingerprint --expect gives (or pass --force). Rule, reward and limit changes of "
        "approved campaigns await approval."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("partnership", help="The partnership's id")
        parser.add_argument("file", help="The document (YAML or JSON); - reads stdin")
        parser.add_argument(
            "--actor", required=True, help="The operator (username) it is recorded for"
        )
        given = parser.add_mutually_exclusive_group(required=True)
        given.add_argument("--expect", metavar="FINGERPRINT", help="From config_plan")
        given.add_argument(
            "--force", action="store_true", help="Apply even if the configuration changed"
        )
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts")

    def handle(self, *args, **options) -> None:
        partnership = partnership_named(options["partnership"])
        actor = actor_named(options["actor"])
        if actor is None:
            raise CommandError("Give the operator with --actor")
        try:
            document = document_read(options["file"])
            applied = configuration_apply(
                partnership=partnership,
                document=document,
                actor=actor,
                expect=options["expect"],
                force=options["force"],
            )
        except ApplicationError as exc:
            raise command_error(exc) from exc
        if options["json"]:
            self.stdout.write(json.dumps(applied.as_dict(), indent=2))
            return
        self.stdout.write("\n".join(plan_lines(applied.plan)))
        self.stdout.write(f"Applied. Fingerprint now: {applied.fingerprint}")
