"""The demo's Pilot login (``make run`` calls this): prints the user and password.

The password is generated once and kept in ``var/demo-login.json`` (local, git-ignored,
readable by its owner only) to print it again on later runs. Refused outside the dev stack:
see ``rewards.services.demo.demo_operator_ensure``.
"""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from rewards.services.demo import DEMO_OPERATOR, DemoRefused, demo_operator_ensure

LOGIN_FILE = settings.BASE_DIR / "var" / "demo-login.json"


class Command(BaseCommand):
    help = "Creates the demo Pilot login once (dev stack only); prints it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON for scripts")

    def handle(self, *args, **options) -> None:
        stored = self._stored_password()
        try:
            password = demo_operator_ensure(password=stored)
        except DemoRefused as exc:
            raise CommandError(f"demo login refused: {exc}") from None
        if password != stored:
            LOGIN_FILE.parent.mkdir(parents=True, exist_ok=True)
            LOGIN_FILE.unlink(missing_ok=True)
            LOGIN_FILE.touch(mode=0o600)
            LOGIN_FILE.write_text(json.dumps({"username": DEMO_OPERATOR, "password": password}))
        login = {"username": DEMO_OPERATOR, "password": password}
        if options["json"]:
            self.stdout.write(json.dumps(login))
        else:
            self.stdout.write(f"Pilot login: user {DEMO_OPERATOR}, password {password}")

    def _stored_password(self) -> str | None:
        try:
            return json.loads(LOGIN_FILE.read_text())["password"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
