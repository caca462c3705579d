"""The HTTP client webhooks are sent with: it connects only where the destination rules allow.

Checking a URL's host and then letting the HTTP library resolve it again would leave a
gap: DNS may answer with a public address for the check and with 127.0.0.1 for the
connection (DNS rebinding). So the client resolves each host once, here, checks every
address it got (`WebhookDestinations.check_addresses`) and connects to those very
addresses. It does so as httpx's network backend, below the HTTP layer: the request
keeps its URL, so the `Host` header, TLS SNI and the certificate check all use the
host name, and pooled connections are keyed by it.

Redirects are not followed (a receiver that moved is registered again under its new
URL), and the environment's proxy settings are not used: a proxy would make the
connection somewhere other than the address checked.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from ipaddress import ip_address

import httpcore
import httpx

from loopline.integration.destinations import (
    AddressRefused,
    IPAddress,
    WebhookDestinations,
    host_address,
    normalized_host,
)

# (host, port) → the addresses to connect to, in order of preference.
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
# httpx's defaults, which its transport would have given the pool this one replaces.
MAX_CONNECTIONS = 100
MAX_KEEPALIVE_CONNECTIONS = 20
KEEPALIVE_EXPIRY_S = 5.0


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The operating system's answer (getaddrinfo), each address once."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ip_address(sockaddr[0]) for *_, sockaddr in found))


class PinnedNetwork(httpcore.AsyncNetworkBackend):
    """Connects to a host through the addresses it resolved to and the rules allowed, and to no other."""

    def __init__(self, destinations: WebhookDestinations, resolver: Resolver) -> None:
        self._destinations = destinations
        self._resolver = resolver
        self._network = httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> Sequence[IPAddress]:
        try:
            host = normalized_host(host)
            literal = host_address(host)
        except ValueError as exc:
            raise httpcore.ConnectError(f"{host!r} is not a host") from exc
        try:
            addresses = [literal] if literal is not None else await self._resolver(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        self._destinations.check_addresses(host, port, addresses)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            # One deadline for the lookup and every address tried, as the connect timeout means.
            async with asyncio.timeout(timeout):
                failures: list[httpcore.ConnectError] = []
                for address in await self._addresses(host, port):
                    try:
                        return await self._network.connect_tcp(
                            str(address), port, local_address=local_address, socket_options=socket_options
                        )
                    except httpcore.ConnectError as exc:
                        failures.append(exc)
                raise failures[-1]
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection to {host} within {timeout} s") from exc

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("webhooks are not sent over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose every connection goes through `PinnedNetwork`.

    httpx takes no network backend, so the pool it builds is replaced with one that has the
    same settings and this backend; the rest (requests, responses, error mapping) is httpx's.
    """

    def __init__(self, destinations: WebhookDestinations, resolver: Resolver) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
            network_backend=PinnedNetwork(destinations, resolver),
        )


def webhook_client(
    destinations: WebhookDestinations, *, timeout_s: float, user_agent: str, resolver: Resolver = system_resolver
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=PinnedTransport(destinations, resolver),
        timeout=timeout_s,
        headers={"User-Agent": user_agent},
        follow_redirects=False,
        trust_env=False,
    )
