"""Transports: the httpx one maps failures to NetworkError; the faulty one is scriptable and seeded."""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any

import httpx
import pytest

from loopline_sync.transport import Fault, FaultyTransport, HttpTransport, NetworkError, TransportResponse
from tests.support import free_port

PUSH = "/api/v1/sync/push"
PULL = "/api/v1/sync/pull"
LOGIN = "/api/v1/auth/login"


class Recorder:
    """The inner transport: remembers what reached "the server" and answers 200 {"n": k}."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        self.received.append((path, body))
        return TransportResponse(200, {}, json.dumps({"n": len(self.received)}).encode())


RANDOM_RATES = {
    Fault.DROP_REQUEST: 0.08,
    Fault.DROP_RESPONSE: 0.08,
    Fault.DUPLICATE: 0.08,
    Fault.DELAY: 0.08,
    Fault.REORDER: 0.08,
    Fault.PAYLOAD_TOO_LARGE: 0.04,
    Fault.UNAUTHORIZED: 0.04,
    Fault.UNAVAILABLE: 0.04,
    Fault.CAPTIVE_PORTAL: 0.04,
    Fault.SERVER_RESTART: 0.04,
}


async def _run_random(seed: int) -> tuple[list[Any], list[tuple[str, bytes]], list[float], int]:
    inner = Recorder()
    delays: list[float] = []
    restarts = 0

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    def restart() -> None:
        nonlocal restarts
        restarts += 1

    faulty = FaultyTransport(inner, random.Random(seed), rates=RANDOM_RATES, sleep=sleep, on_restart=restart)
    for i in range(300):
        path = (PUSH, PULL, LOGIN)[i % 3]
        with contextlib.suppress(NetworkError):
            await faulty.post(path, f"{i}".encode(), {})
    await faulty.flush()
    return [(r.index, r.path, r.fault) for r in faulty.log], inner.received, delays, restarts


async def test_random_faults_are_reproducible_from_the_seed() -> None:
    first = await _run_random(7)
    again = await _run_random(7)
    other = await _run_random(8)
    assert first == again
    assert first[0] != other[0]
    faults = {fault for _, _, fault in first[0]}
    assert faults >= set(RANDOM_RATES)  # every kind occurs in 300 requests
    # Sign-in requests are never faulted by default.
    assert all(fault is Fault.NONE for _, path, fault in first[0] if path == LOGIN)


async def test_scripted_faults_come_first_in_order_and_respect_the_path() -> None:
    inner = Recorder()
    faulty = FaultyTransport(inner, random.Random(1))
    faulty.script(Fault.UNAVAILABLE, path=PULL)
    faulty.script(Fault.CAPTIVE_PORTAL)
    first = await faulty.post(PUSH, b"a", {})  # the PULL fault waits; the path-less one applies
    assert first.status == 200
    assert b"<html>" in first.body
    second = await faulty.post(PUSH, b"b", {})
    assert json.loads(second.body) == {"n": 1}
    third = await faulty.post(PULL, b"c", {})
    assert third.status == 503
    assert third.headers["retry-after"] == "1"
    assert [(r.fault, r.scripted) for r in faulty.log] == [
        (Fault.CAPTIVE_PORTAL, True),
        (Fault.NONE, False),
        (Fault.UNAVAILABLE, True),
    ]


async def test_drop_request_sends_nothing_and_drop_response_sends_once() -> None:
    inner = Recorder()
    faulty = FaultyTransport(inner, random.Random(1))
    faulty.script(Fault.DROP_REQUEST, Fault.DROP_RESPONSE)
    with pytest.raises(NetworkError):
        await faulty.post(PUSH, b"lost", {})
    assert inner.received == []
    with pytest.raises(NetworkError):
        await faulty.post(PUSH, b"committed", {})
    assert inner.received == [(PUSH, b"committed")]


async def test_duplicate_sends_twice_and_returns_the_second_answer() -> None:
    inner = Recorder()
    faulty = FaultyTransport(inner, random.Random(1))
    faulty.script(Fault.DUPLICATE)
    response = await faulty.post(PUSH, b"x", {})
    assert inner.received == [(PUSH, b"x"), (PUSH, b"x")]
    assert json.loads(response.body) == {"n": 2}


async def test_delay_sleeps_within_the_bound() -> None:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    faulty = FaultyTransport(Recorder(), random.Random(1), max_delay_s=2.0, sleep=sleep)
    faulty.script(Fault.DELAY)
    assert (await faulty.post(PUSH, b"x", {})).status == 200
    assert len(delays) == 1
    assert 0.0 <= delays[0] <= 2.0


async def test_reorder_holds_a_request_and_replays_it_after_newer_ones() -> None:
    inner = Recorder()
    faulty = FaultyTransport(inner, random.Random(1), reorder_after=2)
    faulty.script(Fault.REORDER)
    with pytest.raises(NetworkError):
        await faulty.post(PUSH, b"old", {"Authorization": "Bearer t"})
    assert faulty.held == 1
    await faulty.post(PUSH, b"new1", {})
    assert inner.received == [(PUSH, b"new1")]
    await faulty.post(PUSH, b"new2", {})
    assert inner.received == [(PUSH, b"new1"), (PUSH, b"new2"), (PUSH, b"old")]
    assert faulty.held == 0

    faulty.script(Fault.REORDER)
    with pytest.raises(NetworkError):
        await faulty.post(PULL, b"late", {})
    await faulty.flush()
    assert inner.received[-1] == (PULL, b"late")


async def test_synthetic_answers_look_like_the_real_ones() -> None:
    faulty = FaultyTransport(Recorder(), random.Random(1), retry_after_s=7)
    faulty.script(Fault.PAYLOAD_TOO_LARGE, Fault.UNAUTHORIZED, Fault.UNAVAILABLE)
    too_large = await faulty.post(PUSH, b"", {})
    unauthorized = await faulty.post(PUSH, b"", {})
    unavailable = await faulty.post(PUSH, b"", {})
    assert (too_large.status, too_large.error()[0]) == (413, "payload_too_large")
    assert (unauthorized.status, unauthorized.error()[0]) == (401, "not_authenticated")
    assert (unavailable.status, unavailable.error()[0], unavailable.headers["retry-after"]) == (503, "unavailable", "7")


async def test_server_restart_runs_the_hook_and_loses_the_request() -> None:
    inner = Recorder()
    calls: list[str] = []

    async def restart() -> None:
        calls.append("restarted")

    faulty = FaultyTransport(inner, random.Random(1), on_restart=restart)
    faulty.script(Fault.SERVER_RESTART)
    with pytest.raises(NetworkError):
        await faulty.post(PUSH, b"x", {})
    assert calls == ["restarted"]
    assert inner.received == []


def test_fault_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="add up"):
        FaultyTransport(Recorder(), random.Random(1), rates={Fault.DROP_REQUEST: 0.7, Fault.DUPLICATE: 0.7})
    with pytest.raises(ValueError, match="on_restart"):
        FaultyTransport(Recorder(), random.Random(1), rates={Fault.SERVER_RESTART: 0.1})


async def test_http_transport_reports_a_refused_connection_as_network_error() -> None:
    async with HttpTransport(f"http://127.0.0.1:{free_port()}", timeout_s=5) as transport:
        with pytest.raises(NetworkError):
            await transport.post(PUSH, b"{}", {})


async def test_http_transport_passes_bytes_and_lowercases_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, headers={"Retry-After": "3"}, content=b'{"error":{"code":"unavailable"}}')

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    transport = HttpTransport("http://server/", client=client)
    response = await transport.post(PUSH, b'{"a":1}', {"Authorization": "Bearer t"})
    await client.aclose()
    assert str(seen[0].url) == "http://server/api/v1/sync/push"
    assert seen[0].content == b'{"a":1}'
    assert seen[0].headers["authorization"] == "Bearer t"
    assert seen[0].headers["content-type"] == "application/json"
    assert response.status == 503
    assert response.headers["retry-after"] == "3"
    assert response.error() == ("unavailable", {})
