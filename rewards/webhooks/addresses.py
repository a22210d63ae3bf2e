"""The address check. A webhook's host is resolved once per send (within the timeout) and every
address checked; the request then goes to a checked address, never resolving the name again (a
second lookup could answer differently: DNS rebinding). The receiver still sees its own name:
in the Host header, in TLS's server name (SNI), and the certificate is verified against it."""

import ipaddress
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], list[str]]  # a host name -> its addresses, as text

# The policy is written out: Python's is_global is not enough (its table on 3.11.7 predates
# the fix of CVE-2024-4032: it calls ff02::1, fec0::1, 2002:7f00:1::1 and 224.0.0.1 global).
#
# IPv4: global (not private, loopback, link-local, documentation, benchmarking...) and none of:
_NOT_PUBLIC_4 = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
# IPv6 addresses that stand for an IPv4 address, checked as that address: the network, and
# how far from the right the IPv4 address's 32 bits are.
_EMBEDDING_4 = tuple(
    (ipaddress.ip_network(network), shift)
    for network, shift in (
        ("::ffff:0:0/96", 0),  # IPv4-mapped
        ("::/96", 0),  # IPv4-compatible (deprecated), and :: and ::1
        ("64:ff9b::/96", 0),  # NAT64, the well-known prefix (RFC 6052)
        # Local-use NAT64 (RFC 8215) only in the /96 format: where a /48 to /64 prefix puts the
        # IPv4 address depends on the local setup, so the rest of 64:ff9b:1::/48 is refused.
        ("64:ff9b:1::/96", 0),
        ("2002::/16", 80),  # 6to4
    )
)
# IPv6: global unicast only, less the special-purpose blocks inside it.
_GLOBAL_UNICAST_6 = ipaddress.ip_network("2000::/3")
_NOT_PUBLIC_6 = tuple(
    ipaddress.ip_network(network)
    for network in (
        "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID...
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)


class WebhookRefused(Exception):
    """The endpoint's address is not one we send to."""


def host_resolve(host: str) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]


@dataclass(frozen=True)
class Destination:
    url: httpx.URL
    addresses: tuple[Address, ...]  # checked, in the resolver's order of preference

    @property
    def host(self) -> str:
        return self.url.raw_host.decode("ascii")

    @property
    def host_header(self) -> str:
        return self.url.netloc.decode("ascii")

    def url_at(self, address: Address) -> httpx.URL:
        return self.url.copy_with(host=str(address))


def destination_resolve(*, url: str, resolve: Resolver = host_resolve) -> Destination:
    """Resolves the URL's host once. Unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES is set, refuses it
    if any address is not public unicast (see _public)."""
    parts = httpx.URL(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused(f"scheme {parts.scheme!r} is not http(s)")
    host = parts.raw_host.decode("ascii")
    try:
        answers = _resolve_in_time(resolve, host, settings.WEBHOOK_TIMEOUT_SECONDS)
    except OSError as exc:
        raise WebhookRefused(f"cannot resolve {host}: {exc}") from exc
    addresses = tuple(dict.fromkeys(ipaddress.ip_address(a.split("%")[0]) for a in answers))
    if not addresses:
        raise WebhookRefused(f"cannot resolve {host}: no address")
    if not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        for address in addresses:
            if not _public(address):
                raise WebhookRefused(f"{host} resolves to a non-public address ({address})")
    return Destination(url=parts, addresses=addresses)


def _resolve_in_time(resolve: Resolver, host: str, timeout: float) -> list[str]:
    """``resolve(host)``, given up after ``timeout`` seconds. getaddrinfo has no timeout of its
    own (the system resolver's retries can take half a minute and more), so the lookup runs in
    a thread of its own, left to finish in the background if it overruns."""
    outcome: list = []

    def lookup() -> None:
        try:
            outcome.append(resolve(host))
        except Exception as exc:  # handed to the caller
            outcome.append(exc)

    thread = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise TimeoutError(f"no answer in {timeout:g} s")
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


def _public(address: Address) -> bool:
    if address.version == 4:
        return address.is_global and not any(address in net for net in _NOT_PUBLIC_4)
    for network, shift in _EMBEDDING_4:
        if address in network:
            return _public(ipaddress.IPv4Address((int(address) >> shift) & 0xFFFFFFFF))
    return address in _GLOBAL_UNICAST_6 and not any(address in net for net in _NOT_PUBLIC_6)
