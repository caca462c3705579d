"""The client's address, behind reverse proxies that are trusted to tell it.

A proxy appends the address a request came from to `X-Forwarded-For`; anyone else can
send that header saying whatever they like, and the per-address sign-in limit would
count each made-up address separately. So the header counts only when the peer is a
proxy named in `LOOPLINE_TRUSTED_PROXIES`, and it is read from the right: the client is
the right-most address that is not a trusted proxy itself (everything to its left came
from the client and may be invented).

The middleware puts that address into the ASGI scope, so `request.client` is the client
everywhere (the sign-in limit, the audit of a sign-in). uvicorn's own handling of the
header, which trusts 127.0.0.1 by default, is switched off in `loopline serve`.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from litestar.types import ASGIApp, Receive, Scope, Send

SETTING = "LOOPLINE_TRUSTED_PROXIES"
FORWARDED_FOR = b"x-forwarded-for"


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ip_address(text.strip())
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    return (address.ipv4_mapped or address) if isinstance(address, IPv6Address) else address


class TrustedProxies:
    def __init__(self, networks: Iterable[IPv4Network | IPv6Network] = ()) -> None:
        self._networks = tuple(networks)

    @classmethod
    def from_setting(cls, value: str) -> TrustedProxies:
        """Comma-separated addresses and networks (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`)."""
        try:
            return cls(ip_network(entry.strip()) for entry in value.split(",") if entry.strip())
        except ValueError as exc:
            raise ValueError(f"{SETTING}: {exc}") from None

    def trusts(self, text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in network for network in self._networks)

    def client(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client's address, given the peer's and the `X-Forwarded-For` entries in header order."""
        if not self.trusts(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                address = _address(hop)
                return str(address) if address is not None else hop
        # Every hop is a trusted proxy: the one farthest from us is the nearest thing to a client.
        return hops[0] if hops else peer


class ForwardedClientMiddleware:
    """Sets the scope's client to `TrustedProxies.client` of the request."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in {"http", "websocket"} and peer is not None and self.proxies.trusts(peer[0]):
            forwarded_for = [
                hop
                for name, value in scope["headers"]
                if name.lower() == FORWARDED_FOR
                for hop in value.decode("latin-1").split(",")
            ]
            scope["client"] = (self.proxies.client(peer[0], forwarded_for), peer[1])
        await self.app(scope, receive, send)
