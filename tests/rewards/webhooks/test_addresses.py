"""The address check: one lookup per send, and the request goes to the address it checked."""

import ipaddress
import shutil
import socket
import subprocess
import threading
import time

import pytest

from rewards.webhooks.addresses import WebhookRefused, destination_resolve
from rewards.webhooks.models import WebhookDelivery
from rewards.webhooks.sending import webhook_deliveries_send_due
from tests.factories import TriggerEventFactory

from .support import endpoint_for, one_reward_for

pytestmark = pytest.mark.django_db

HOST = "hooks.partner.test"


class Resolver:
    """Answers the n-th lookup with the n-th answer (the last one repeats): a host whose DNS
    answer changes between lookups, as in DNS rebinding."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        return self.answers[min(len(self.asked), len(self.answers)) - 1]


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate (and its key) for HOST, and only that name."""
    if not shutil.which("openssl"):
        pytest.skip("openssl makes the test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={HOST}"),
            *("-addext", f"subjectAltName=DNS:{HOST}"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_the_delivery_goes_to_the_address_checked_not_to_a_later_answer(trigger, process, receiver):
    checked = receiver()
    rebound = receiver(address="127.0.0.2", port=checked.port)
    one_reward_for(trigger, process, checked.url_at(HOST))
    resolve = Resolver(["127.0.0.1"], ["127.0.0.2"])

    webhook_deliveries_send_due(resolve=resolve)

    assert len(checked.accepted()) == 1
    assert rebound.requests == []
    assert resolve.asked == [HOST]
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_the_receiver_sees_the_endpoints_host_name_and_port(trigger, process, receiver):
    hook = receiver()
    one_reward_for(trigger, process, hook.url_at(HOST))

    webhook_deliveries_send_due(resolve=Resolver(["127.0.0.1"]))

    ((headers, _, _),) = hook.requests
    assert headers["Host"] == f"{HOST}:{hook.port}"


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        (["10.0.0.7"], "10.0.0.7"),
        (["93.184.216.34", "127.0.0.1"], "127.0.0.1"),
        (["fe80::1%eth0"], "fe80::1"),
        (["::ffff:169.254.169.254"], "::ffff:a9fe:a9fe"),
        (["64:ff9b::a00:7"], "64:ff9b::a00:7"),  # NAT64 for 10.0.0.7
    ],
)
def test_a_host_resolving_to_a_private_address_is_refused_and_the_refusal_recorded(
    trigger, process, receiver, settings, answer, refused
):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    hook = receiver()
    one_reward_for(trigger, process, hook.url_at(HOST))

    webhook_deliveries_send_due(resolve=Resolver(answer))

    delivery = WebhookDelivery.objects.get()
    assert hook.requests == []
    assert (delivery.status, delivery.last_status_code) == ("pending", None)
    assert delivery.last_error == (
        f"WebhookRefused: {HOST} resolves to a non-public address ({refused})"
    )
    assert delivery.history[-1]["error"] == delivery.last_error


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "::127.0.0.1",  # IPv4-compatible
        "::a00:7",  # IPv4-compatible 10.0.0.7
        "::",
        "::1",
        "::ffff:100.64.0.1",  # IPv4-mapped shared address space
        "64:ff9b:1::a00:1",  # local-use NAT64 (RFC 8215) of 10.0.0.1
        "64:ff9b:1:a00:0:100:5db8:d822",  # local-use NAT64 in another format: not decoded
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "fec0::1",  # site-local
        "fc00::1",  # unique local
        "fe80::1",  # link-local
        "ff02::1",  # multicast, link scope
        "ff0e::1",  # multicast, global scope
        "2001::1",  # Teredo
        "2001:db8::1",  # documentation
        "3fff::1",  # documentation (RFC 9637)
        "100::1",  # discard-only
        "4000::1",  # not global unicast (outside 2000::/3)
        "224.0.0.1",  # multicast
        "239.255.255.250",  # multicast (SSDP)
        "233.252.0.1",  # multicast (MCAST-TEST-NET)
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "240.0.0.1",  # reserved
        "255.255.255.255",  # broadcast
        "0.0.0.0",  # noqa: S104 - this network, refused
        "0.1.2.3",  # this network
        "192.0.0.9",  # IETF protocol assignments
        "192.88.99.1",  # 6to4 relay anycast
        "198.18.0.1",  # benchmarking
        "10.0.0.7",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
    ],
)
def test_an_address_outside_the_public_unicast_ranges_is_refused(settings, address):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False

    with pytest.raises(WebhookRefused, match="non-public address"):
        destination_resolve(url=f"https://{HOST}/hooks", resolve=Resolver([address]))


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
        "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
        "::ffff:93.184.216.34",
        "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34
        "64:ff9b:1::5db8:d822",  # local-use NAT64, /96 format
    ],
)
def test_a_public_unicast_address_is_accepted(settings, address):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False

    destination = destination_resolve(url=f"https://{HOST}/hooks", resolve=Resolver([address]))

    assert [str(a) for a in destination.addresses] == [str(ipaddress.ip_address(address))]


def test_a_lookup_that_hangs_is_given_up_after_the_timeout(trigger, process, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    answer = threading.Event()

    def hanging(host: str) -> list[str]:  # getaddrinfo has no timeout of its own
        answer.wait(10)
        return ["127.0.0.1"]

    one_reward_for(trigger, process, f"https://{HOST}/hooks")
    started = time.monotonic()
    try:
        webhook_deliveries_send_due(resolve=hanging)
    finally:
        answer.set()

    assert time.monotonic() - started < 2
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.last_error == f"WebhookRefused: cannot resolve {HOST}: no answer in 0.3 s"


def test_a_host_that_does_not_resolve_is_recorded_and_retried(trigger, process):
    def nowhere(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    one_reward_for(trigger, process, f"https://{HOST}/hooks")

    webhook_deliveries_send_due(resolve=nowhere)

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.last_error.startswith(f"WebhookRefused: cannot resolve {HOST}")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hooks",
        "http://localhost/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/hooks",
        "http://[::1]/hooks",
    ],
)
def test_internal_addresses_are_refused_in_production(trigger, process, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    one_reward_for(trigger, process, url)

    webhook_deliveries_send_due()  # the system's resolver

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("WebhookRefused")
    assert "non-public address" in delivery.last_error


def test_an_address_refusing_the_connection_gives_way_to_the_next_checked_one(
    trigger, process, receiver
):
    hook = receiver()
    one_reward_for(trigger, process, hook.url_at(HOST))
    resolve = Resolver(["127.0.0.2", "127.0.0.1"])  # nothing listens on 127.0.0.2

    webhook_deliveries_send_due(resolve=resolve)

    assert len(hook.accepted()) == 1
    assert resolve.asked == [HOST]


def test_an_ipv6_address_is_connected_to(trigger, process, receiver):
    try:
        hook = receiver(address="::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    one_reward_for(trigger, process, hook.url_at(HOST))

    webhook_deliveries_send_due(resolve=Resolver(["::1"]))

    ((headers, _, _),) = hook.accepted()
    assert headers["Host"] == f"{HOST}:{hook.port}"


def test_tls_names_the_endpoints_host_and_verifies_its_certificate(
    trigger, process, receiver, certificate, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])  # trust the test certificate
    hook = receiver(tls=certificate)
    one_reward_for(trigger, process, hook.url_at(HOST))

    webhook_deliveries_send_due(resolve=Resolver(["127.0.0.1"]))

    assert len(hook.accepted()) == 1
    assert hook.server_names == [HOST]
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_a_certificate_for_another_name_is_not_trusted(
    trigger, process, receiver, certificate, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    hook = receiver(tls=certificate)
    one_reward_for(trigger, process, hook.url_at("other.partner.test"))

    webhook_deliveries_send_due(resolve=Resolver(["127.0.0.1"]))

    delivery = WebhookDelivery.objects.get()
    assert hook.requests == []
    assert delivery.status == "pending"
    assert "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
    assert "other.partner.test" in delivery.last_error


def test_a_tls_connection_checked_for_one_host_is_not_reused_for_another(
    trigger, process, receiver, certificate, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    hook = receiver(tls=certificate, keep_alive=True)
    trusted = one_reward_for(trigger, process, hook.url_at(HOST))
    other = endpoint_for(trigger.partnership, hook.url_at("other.partner.test"))
    TriggerEventFactory(trigger=trigger)
    process()  # a second reward: to both endpoints, after the first one's delivery

    webhook_deliveries_send_due(resolve=Resolver(["127.0.0.1"]))  # one batch, one address

    assert [d.status for d in WebhookDelivery.objects.filter(endpoint=trusted)] == [
        "succeeded",
        "succeeded",
    ]
    refused = WebhookDelivery.objects.get(endpoint=other)
    assert "CERTIFICATE_VERIFY_FAILED" in refused.last_error
    assert [headers["Host"].split(":")[0] for headers, _, _ in hook.requests] == [HOST, HOST]
