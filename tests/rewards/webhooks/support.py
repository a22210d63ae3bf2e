"""Real HTTP receivers on this machine, and endpoints that deliver to them."""

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rewards.webhooks.models import WebhookEndpoint
from rewards.webhooks.services import webhook_endpoint_create
from tests.factories import CampaignFactory, TriggerEventFactory
from tests.support import free_port


class Receiver:
    """Answers with the given statuses in turn (then 200); can hold requests until released
    (``hang``: all of them, ``hold``: the first ``hold``). Listens on ``address`` (IPv4 or
    IPv6), with TLS if given a (certificate, key) pair, and records the TLS server names (SNI)
    clients ask for; ``keep_alive``: HTTP/1.1 connections that stay open between requests."""

    def __init__(
        self,
        statuses=(),
        hang: bool = False,
        *,
        hold: int = 0,
        address: str = "127.0.0.1",
        port: int | None = None,
        tls: tuple[str, str] | None = None,
        keep_alive: bool = False,
        answer_headers: dict[str, str] | None = None,
    ) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict, bytes, int]] = []
        self.server_names: list[str | None] = []
        self.arrived = 0
        self.release = threading.Event()
        self.port = port or free_port()
        self.scheme = "https" if tls else "http"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrived += 1
                status = receiver.statuses.pop(0) if receiver.statuses else 200  # as they arrive
                if hang or receiver.arrived <= hold:
                    receiver.release.wait(60)
                receiver.requests.append((dict(self.headers), body, status))
                answer = b"ok" if status < 300 else b"nope"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                for name, value in (answer_headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in address else socket.AF_INET

        self.server = Server((address, self.port), Handler)
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            context.sni_callback = lambda _socket, name, _context: self.server_names.append(name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def url_at(self, host: str) -> str:
        """The URL under another name for this receiver (resolved by a test's resolver)."""
        return f"{self.scheme}://{host}:{self.port}/hooks"

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
