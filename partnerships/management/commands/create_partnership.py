import json

from django.core.management.base import BaseCommand

from partnerships.services import partnership_create


class Command(BaseCommand):
    help = "Creates a partnership (and its partner if new) with a live API key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--partner", help="Partner (company) name; defaults to NAME")
        parser.add_argument("--reward-unit", default="Points")
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts")

    def handle(self, *args, **options) -> None:
        partnership, issued = partnership_create(
            name=options["name"],
            partner_name=options["partner"],
            reward_unit=options["reward_unit"],
        )
        result = {"partnership_id": str(partnership.id), "api_key": issued.plaintext}
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"Partnership: {result['partnership_id']}")
        self.stdout.write(f"API key (shown once): {result['api_key']}")
