"""Creates the demo data once and prints how to use it (``make run`` calls this).

Demo data: a partnership with a live API key, the triggers ``transaction_completed`` and
``user_signup``, and two campaigns: 5% cashback up to 10 on purchases of 20 or more, and
100 points once per user on signup.

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
from rewards.services.demo import demo_catalog_ensure

DEMO_FILE = settings.BASE_DIR / "var" / "demo.json"
DEMO_PARTNER = "Demo Bank"


class Command(BaseCommand):
    help = "Creates the demo partnership and API key once; prints them with a ready curl."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts")
        parser.add_argument("--base-url", default=None)

    def handle(self, *args, **options) -> None:
        credentials = self._stored_credentials() or self._create()
        demo_catalog_ensure(partnership=Partnership.objects.get(pk=credentials["partnership_id"]))
        base_url = options["base_url"] or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        result = {**credentials, **demo_request(base_url, **credentials)}
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"Partnership: {result['partnership_id']}")
        self.stdout.write(f"API key:     {result['api_key']}")
        self.stdout.write(f"Send a purchase that earns 5% cashback:\n{result['curl']}")
        self.stdout.write(f"Then follow it:\n{result['status_curl']}")

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
    """The demo request (a 42.50 purchase: 5% cashback = 2.13) and the same as a curl."""
    url = f"{base_url}/partnerships/{partnership_id}/triggers"
    headers = {"x-api-key": api_key, "Content-Type": "application/json"}
    body = {
        "trigger_name": "transaction_completed",
        "external_user_id": "demo-user-1",
        "transaction_context": {"amount": 42.5, "currency": "USD", "merchant_category": "5411"},
    }
    curl = " ".join(
        [
            "curl -sS -X POST",
            shlex.quote(url),
            *(f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers.items()),
            f"-d {shlex.quote(json.dumps(body))}",
        ]
    )
    status_url = f"{base_url}/partnerships/{partnership_id}/trigger-events/<trigger_event_id>"
    status_curl = f"curl -sS {shlex.quote(status_url)} -H {shlex.quote(f'x-api-key: {api_key}')}"
    return {
        "method": "POST",
        "url": url,
        "headers": headers,
        "body": body,
        "curl": curl,
        "status_url": status_url,
        "status_curl": status_curl,
    }
