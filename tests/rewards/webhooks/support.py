"""Real HTTP receivers on this machine, and endpoints that deliver to them."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rewards.webhooks.models import WebhookEndpoint
from rewards.webhooks.services import webhook_endpoint_create
from tests.factories import CampaignFactory, TriggerEventFactory
from tests.support import free_port


class Receiver:
    """Answers with the given statuses in turn (then 200); can hold requests until released."""

    def __init__(self, statuses=(), hang: bool = False) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict, bytes, int]] = []
        self.arrived = 0
        self.release = threading.Event()
        if not hang:
            self.release.set()
        self.port = free_port()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrived += 1
                receiver.release.wait(60)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.append((dict(self.headers), body, status))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"nope")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def accepted(self) -> list:
        return [request for request in self.requests if request[2] < 300]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


def endpoint_for(partnership, url, types=("reward.issued", "reward.reversed"), modes="live"):
    return webhook_endpoint_create(
        endpoint=WebhookEndpoint(
            partnership=partnership, url=url, event_types=list(types), modes=modes
        )
    )


def one_reward_for(trigger, process, url: str) -> WebhookEndpoint:
    """An endpoint at ``url`` and one reward for it to hear about (its delivery is due)."""
    endpoint = endpoint_for(trigger.partnership, url)
    CampaignFactory(trigger=trigger)
    TriggerEventFactory(trigger=trigger)
    process()
    return endpoint
