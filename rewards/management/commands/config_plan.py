import json

from django.core.management.base import BaseCommand

from config.errors import ApplicationError
from rewards.configuration.cli import (
    actor_named,
    command_error,
    document_read,
    partnership_named,
    plan_lines,
)
from rewards.configuration.services import configuration_plan


class Command(BaseCommand):
    help = (
        "Shows what applying a configuration document (FILE, or - for stdin) would do: each "
        "object created, changed (fields before -> after) or deleted, the campaigns whose "
        "change would await approval, and the fingerprint to pass to config_apply --expect."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("partnership", help="The partnership's id")
        parser.add_argument("file", help="The document (YAML or JSON); - reads stdin")
        parser.add_argument(
            "--actor", help="Plan as this operator (their permissions are checked too)"
        )
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts")

    def handle(self, *args, **options) -> None:
        partnership = partnership_named(options["partnership"])
        actor = actor_named(options["actor"])
        try:
            document = document_read(options["file"])
            plan = configuration_plan(partnership=partnership, document=document, actor=actor)
        except ApplicationError as exc:
            raise command_error(exc) from exc
        if options["json"]:
            self.stdout.write(json.dumps(plan.as_dict(), indent=2))
            return
        self.stdout.write("\n".join(plan_lines(plan)))
        self.stdout.write(f"Fingerprint: {plan.fingerprint}")
        if plan.changes:
            self.stdout.write(
                f"Apply: manage.py config_apply {partnership.pk} {options['file']} "
                f"--actor USERNAME --expect {plan.fingerprint}"
            )
