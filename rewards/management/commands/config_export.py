from django.core.management.base import BaseCommand

from rewards.configuration.cli import partnership_named
from rewards.configuration.document import document_dump
from rewards.configuration.state import configuration_export


class Command(BaseCommand):
    help = (
        "Writes a partnership's configuration (settings, triggers, campaigns, webhook "
        "endpoints; no keys or secrets) as one YAML or JSON document, in a stable order."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("partnership", help="The partnership's id")
        parser.add_argument("--format", choices=["yaml", "json"], default="yaml")
        parser.add_argument("--output", help="A file to write; default: stdout")

    def handle(self, *args, **options) -> None:
        partnership = partnership_named(options["partnership"])
        text = document_dump(configuration_export(partnership=partnership), options["format"])
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as file:
                file.write(text)
        else:
            self.stdout.write(text, ending="")
