"""Creates the demo data once and prints how to use it (``make run`` calls this).

The plaintext API key is shown once by design, so the demo keeps its own copy in
``var/demo.json`` (a local, git-ignored file) to print it again on later runs.
"""

import json
import os
import shlex

from django.conf import settings
from django.core.management.base import BaseCommand

from config.errors import ApplicationError
from partnerships.auth import authenticate_partner
from partnerships.models import Partnership
from partnerships.services import api_key_create, partnership_create

DEMO_FILE = settings.BASE_DIR / "var" / "demo.json"
DEMO_PARTNER = "Demo Bank"


class Command(BaseCommand):
    help = "Creates the demo partnership and API key once; prints them with a ready curl."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts")
        parser.add_argument("--base-url", default=None)

    def handle(self, *args, **options) -> None:
        credentials = self._stored_credentials() or self._create()
        base_url = options["base_url"] or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        result = {**credentials, **demo_request(base_url, **credentials)}
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"Partnership: {result['partnership_id']}")
        self.stdout.write(f"API key:     {result['api_key']}")
        self.stdout.write(f"Try:\n{result['curl']}")

    def _stored_credentials(self) -> dict | None:
        """The saved demo credentials, if they still authenticate against this database."""
        try:
            credentials = json.loads(DEMO_FILE.read_text())
            authenticate_partner(
                raw_key=credentials["api_key"],
                partnership_id=credentials["partnership_id"],
                ip="127.0.0.1",
            )
        except (OSError, ValueError, KeyError, ApplicationError):
            return None
        return {"partnership_id": credentials["partnership_id"], "api_key": credentials["api_key"]}

    def _create(self) -> dict:
        partnership = Partnership.objects.filter(partner__name=DEMO_PARTNER, name="Demo").first()
        if partnership is None:
            partnership, issued = partnership_create(name="Demo", partner_name=DEMO_PARTNER)
        else:
            issued = api_key_create(partnership=partnership, name="demo")
        credentials = {"partnership_id": str(partnership.id), "api_key": issued.plaintext}
        DEMO_FILE.parent.mkdir(parents=True, exist_ok=True)
        DEMO_FILE.write_text(json.dumps(credentials))
        return credentials


def demo_request(base_url: str, *, partnership_id: str, api_key: str) -> dict:
    """The demo request: method, url, headers, body, and the same as a curl command."""
    url = f"{base_url}/partnerships/{partnership_id}"
    headers = {"x-api-key": api_key}
    curl = f"curl -sS {shlex.quote(url)} -H {shlex.quote(f'x-api-key: {api_key}')}"
    return {"method": "GET", "url": url, "headers": headers, "body": None, "curl": curl}
