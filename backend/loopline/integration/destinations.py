"""Where webhooks may go: the rules for a webhook URL and for the addresses it reaches.

A webhook has the server send requests wherever an admin points it, so without rules it
reaches what only the server can reach: Loopline's own API on loopback, the cloud's
metadata service at 169.254.169.254, databases and services on the private network
(server-side request forgery). A receiver therefore has to be at a public address,
unless `LOOPLINE_WEBHOOK_ALLOWED_HOSTS` names its host (or host:port): that is how a
receiver inside the network is reached on purpose.

The rules hold twice: for the URL when a subscription is created or changed
(`WebhookDestinations.checked_url`), and for every address its host resolves to when a
delivery connects (`WebhookDestinations.check_addresses`, called by `egress.py`, which
then connects to exactly the addresses it checked), since a name can resolve to a
different address at each lookup.

An address counts in every spelling a resolver accepts: `2130706433`, `127.1`, `0x7f.1`,
`0177.0.0.1` and `127.0.0.1.` are all 127.0.0.1, and an IPv6 address that carries an
IPv4 one (`::ffff:127.0.0.1`, NAT64 `64:ff9b::7f00:1`, 6to4 `2002:7f00:1::`) is judged
by the IPv4 address it reaches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Network

import httpx

from loopline.core.errors import AppError

IPAddress = IPv4Address | IPv6Address

ALLOW_SETTING = "LOOPLINE_WEBHOOK_ALLOWED_HOSTS"
DEFAULT_PORTS = {"http": 80, "https": 443}
# Names that lead to the machine itself or to a cloud's metadata service whatever DNS says.
INTERNAL_NAMES = frozenset(
    {
        "localhost",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
NAT64 = IPv6Network("64:ff9b::/96")

_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
# A host whose last label is a number is an IPv4 address or nothing (as in the WHATWG URL standard).
_IPV4_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")


class AddressRefused(httpx.ConnectError):
    """A delivery's host is, or resolves to, an address webhooks may not reach; the message is safe to show."""


def _ipv4_number(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        if not part.isdigit() or "8" in part or "9" in part:
            raise ValueError(f"{part!r} is not an octal number")
        return int(part, 8)
    if not part.isdigit():
        raise ValueError(f"{part!r} is not a number")
    return int(part)


def _ipv4_from_numbers(host: str) -> IPv4Address | None:
    """The IPv4 address spelled by one to four numbers (decimal, octal or hex), or None for a name."""
    parts = host.split(".")
    if not _IPV4_NUMBER.fullmatch(parts[-1]):
        return None
    if len(parts) > 4:
        raise ValueError(f"{host!r} has more than four numbers")
    *leading, last = [_ipv4_number(part) for part in parts]
    if any(number > 255 for number in leading) or last >= 256 ** (4 - len(leading)):
        raise ValueError(f"{host!r} is out of the IPv4 range")
    return IPv4Address(sum(number << (8 * (3 - index)) for index, number in enumerate(leading)) + last)


def host_address(host: str) -> IPAddress | None:
    """The IP address a normalized URL host spells, or None if it is a name.

    Raises ValueError for a host that is neither a valid address nor a valid name.
    """
    if ":" in host:
        if "%" in host:
            raise ValueError("an IPv6 zone is not an address on the network")
        return IPv6Address(host)
    address = _ipv4_from_numbers(host)
    if address is None and (len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in host.split("."))):
        raise ValueError(f"{host!r} is not a host name")
    return address


def normalized_host(raw_host: str) -> str:
    """A URL's host as the rules compare it: lower case, IDNA-encoded, no trailing dot, an address in canonical form."""
    host = raw_host.lower().removesuffix(".")
    address = host_address(host)
    return str(address) if address is not None else host


def _nat64_ipv4(address: IPv6Address) -> IPv4Address | None:
    return IPv4Address(int(address) & 0xFFFF_FFFF) if address in NAT64 else None


def refusal(address: IPAddress) -> str | None:
    """What kind of non-public address `address` is (`"loopback"`, `"private"`, …), or None if it is public."""
    if isinstance(address, IPv6Address):
        if (carried := address.ipv4_mapped or _nat64_ipv4(address)) is not None:
            # The IPv6 form itself counts as reserved; where it leads is what matters.
            return refusal(carried)
        if address.sixtofour is not None and (reason := refusal(address.sixtofour)):
            return reason
    kinds = {
        "loopback": address.is_loopback,
        "unspecified": address.is_unspecified,
        "link-local": address.is_link_local,
        "multicast": address.is_multicast,
        "reserved": address.is_reserved,
        "private": address.is_private,
        "non-public": not address.is_global,
    }
    return next((kind for kind, applies in kinds.items() if applies), None)


def _is_internal_name(host: str) -> bool:
    return host in INTERNAL_NAMES or host.endswith(".localhost")


def _valid_port(port: int | None) -> bool:
    """httpx takes any number for a port, 0 and 99999 included; None means the scheme's own."""
    return port is None or 1 <= port <= 65535


def _invalid_url(reason: str, message: str) -> AppError:
    return AppError("invalid_url", message, details={"reason": reason})


@dataclass(frozen=True)
class Destination:
    host: str  # normalized (see `normalized_host`)
    port: int
    address: IPAddress | None  # when the host is an address


def parse_webhook_url(url: str) -> Destination:
    """The destination of an absolute http(s) URL without credentials; AppError `invalid_url` otherwise."""
    try:
        parsed = httpx.URL(url)
        scheme, raw_host, userinfo, port = parsed.scheme, parsed.raw_host.decode("ascii"), parsed.userinfo, parsed.port
    # The idna codec's errors (ValueErrors) come through for hosts like "xn--".
    except (httpx.InvalidURL, ValueError):
        raise _invalid_url("syntax", "A webhook URL is an absolute http:// or https:// URL.") from None
    if scheme not in DEFAULT_PORTS or not raw_host:
        raise _invalid_url("syntax", "A webhook URL is an absolute http:// or https:// URL.")
    if userinfo:
        raise _invalid_url(
            "credentials", "A webhook URL may not carry credentials (user:password@); receivers check the signature."
        )
    if not _valid_port(port):
        raise _invalid_url("port", "A webhook URL's port is a number from 1 to 65535.")
    try:
        host = normalized_host(raw_host)
    except ValueError:
        raise _invalid_url("host", "A webhook URL's host is a domain name or an IP address.") from None
    return Destination(host, port or DEFAULT_PORTS[scheme], host_address(host))


class WebhookDestinations:
    """The address rules with the allow-list of `LOOPLINE_WEBHOOK_ALLOWED_HOSTS`."""

    def __init__(self, allowed: Iterable[tuple[str, int | None]] = ()) -> None:
        # (host, port), or (host, None) for every port of the host.
        self._allowed = frozenset(allowed)

    @classmethod
    def from_setting(cls, value: str) -> WebhookDestinations:
        """Parse comma-separated `host` or `host:port` entries (an IPv6 address in brackets)."""
        return cls(_allowed_entry(entry.strip()) for entry in value.split(",") if entry.strip())

    def allows(self, host: str, port: int) -> bool:
        """Whether the allow-list names this normalized host, for every port or for this one."""
        return (host, None) in self._allowed or (host, port) in self._allowed

    def checked_url(self, url: str) -> str:
        """`url`, if webhooks may be sent to it; AppError `invalid_url` or `address_not_allowed` otherwise."""
        destination = parse_webhook_url(url)
        if self.allows(destination.host, destination.port):
            return url
        if destination.address is not None and (reason := refusal(destination.address)):
            raise _not_allowed(f"{destination.host} is not one ({reason})", reason)
        if destination.address is None and _is_internal_name(destination.host):
            raise _not_allowed(f"{destination.host} names this machine or a metadata service", "internal_name")
        return url

    def check_addresses(self, host: str, port: int, addresses: Iterable[IPAddress]) -> None:
        """Raise AddressRefused unless every address `host` resolved to may be reached.

        All of them, not just one: a connection falls back to the next address when one fails.
        """
        if self.allows(host, port):
            return
        for address in addresses:
            if reason := refusal(address):
                raise AddressRefused(
                    f"{host} leads to an address that is not public ({reason}); "
                    f"webhooks go to public addresses unless {ALLOW_SETTING} names the host"
                )


def _not_allowed(what: str, reason: str) -> AppError:
    return AppError(
        "address_not_allowed",
        f"Webhooks go to public addresses, and {what}; {ALLOW_SETTING} can allow a host on purpose.",
        details={"reason": reason},
    )


def _allowed_entry(entry: str) -> tuple[str, int | None]:
    try:
        url = httpx.URL(f"http://{entry}/")
        if url.userinfo or url.raw_path != b"/" or not url.raw_host or not _valid_port(url.port):
            raise ValueError(entry)
        return normalized_host(url.raw_host.decode("ascii")), url.port
    except (httpx.InvalidURL, ValueError):
        raise ValueError(f"{ALLOW_SETTING}: {entry!r} is not a host or host:port") from None
