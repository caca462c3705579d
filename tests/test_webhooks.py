"""Webhooks: the domain-event outbox delivered to real HTTP receivers, with retries on a frozen clock."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import col, select

from loopline.app import create_app
from loopline.core.clock import FrozenClock
from loopline.core.db import Database
from loopline.core.events import DomainEvent, emit
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.integration.dispatcher import GAP_GRACE, deliver_due, new_client, retry_delay, settled_through
from loopline.integration.models import WebhookSubscription
from loopline.integration.webhooks import update_subscription
from tests.conftest import Headers, Login, sign_in
from tests.loop_helpers import LATE_SHIFT_C1, LOT_018, demo_ids, inspection
from tests.support import free_port
from tests.sync_helpers import Device

API = "/api/v1/admin/webhooks"
RECEIVERS = "127.0.0.1"
TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def world_settings(world_settings: Settings) -> Settings:
    # The tests run delivery rounds themselves on a frozen clock; the app's own worker would race them.
    # Their receivers listen on loopback, which webhooks reach only when the allow-list names it.
    return replace(world_settings, webhook_interval_s=0, webhook_timeout_s=TIMEOUT_S, webhook_allowed_hosts=RECEIVERS)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float  # time.monotonic() when it arrived

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


@dataclass
class Receiver:
    """A real HTTP server on a free port: records every request and answers `status`."""

    status: int = 204
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def accepted(self) -> list[dict[str, Any]]:
        return [r.event for r in self.requests if 200 <= r.status < 300]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                status = received.status
                headers = {k.lower(): v for k, v in self.headers.items()}
                received.requests.append(Request(self.path, headers, body, status, time.monotonic()))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/loopline"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    server.shutdown()
    server.server_close()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A URL whose server takes the connection and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


@contextlib.contextmanager
def answering(answer: bytes) -> Iterator[str]:
    """A URL whose server reads each request and answers `answer`, which need not be HTTP."""

    def serve(listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # the listener was closed: the test is over
                return
            with connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536)
                head, _, body = request.partition(b"\r\n\r\n")
                fields = (line.split(b":", 1) for line in head.split(b"\r\n")[1:])
                length = int({name.strip().lower(): value for name, value in fields}[b"content-length"])
                while len(body) < length:
                    body += connection.recv(65536)
                connection.sendall(answer)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        threading.Thread(target=serve, args=(listener,), daemon=True).start()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


@dataclass
class Resolver:
    """DNS as the tests want it to answer: host name → addresses, and every question asked."""

    answers: dict[str, list[str]]
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[IPv4Address | IPv6Address]:
        self.asked.append(host)
        return [ip_address(address) for address in self.answers[host]]


@dataclass
class Rounds:
    runtime: Runtime
    clock: FrozenClock
    client: httpx.AsyncClient

    async def drain(self) -> int:
        """Delivery rounds until one finds nothing due at the clock's time; the attempts made."""
        made = 0
        while attempts := await deliver_due(self.runtime, self.client):
            made += attempts
        return made

    async def emit(self, *event_types: str) -> list[int]:
        async with self.runtime.unit_of_work(actor="test", command="test.emit") as session:
            for event_type in event_types:
                emit(session, event_type, subject_type="test", subject_id="t-1", actor="test", at=self.clock.now())
        async with self.runtime.db.read_session() as session:
            newest = await session.scalars(
                select(DomainEvent.id).order_by(col(DomainEvent.id).desc()).limit(len(event_types))
            )
            return sorted(i for i in newest if i is not None)


@pytest.fixture
async def rounds(world_settings: Settings) -> AsyncIterator[Rounds]:
    clock = FrozenClock(datetime.now(UTC))
    runtime = Runtime(settings=world_settings, db=Database.open(world_settings), clock=clock)
    try:
        async with new_client(world_settings) as client:
            yield Rounds(runtime, clock, client)
        # Each test's subscriptions end with it, so later rounds do not call its closed receivers.
        async with runtime.db.read_session() as session:
            active = list(await session.scalars(select(WebhookSubscription.id).where(col(WebhookSubscription.active))))
        for subscription_id in active:
            await update_subscription(runtime, actor="test", subscription_id=subscription_id, changes={"active": False})
    finally:
        await runtime.db.close()


@pytest.fixture
async def admin(world_login: Login) -> Headers:
    return await world_login("admin")


async def subscribe(client: AsyncTestClient[Any], admin: Headers, url: str, *event_types: str) -> dict[str, Any]:
    response = await client.post(API, json={"url": url, "event_types": list(event_types)}, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliveries(
    client: AsyncTestClient[Any], admin: Headers, subscription_id: str, **params: str
) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/{subscription_id}/deliveries", params=params, headers=admin)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def verify(secret: str, request: Request) -> bool:
    """What a receiver does with `Loopline-Signature`, written from the documented format."""
    parts = dict(part.split("=", 1) for part in request.headers["loopline-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_an_out_of_spec_inspection_reaches_each_subscriber_with_the_events_it_asked_for(
    world_client: AsyncTestClient[Any],
    world_login: Login,
    world_runtime: Runtime,
    admin: Headers,
    rounds: Rounds,
    receiver: Receiver,
) -> None:
    [before] = await rounds.emit("test.before_subscribing")
    everything = await subscribe(world_client, admin, receiver.url, "*")
    cases = await subscribe(world_client, admin, receiver.url + "/cases", "case.*")
    assert everything["secret"].startswith("whsec_")
    assert everything["secret"] != cases["secret"]

    ids = await demo_ids(world_runtime)
    wang = Device(world_client, await world_login("wang.lei"))
    await wang.push_ok(wang.mutation("inspection.submit", inspection(ids, LOT_018, LATE_SHIFT_C1, number="INS-88213")))
    async with world_runtime.db.read_session() as session:
        emitted = list(
            await session.scalars(select(DomainEvent).where(col(DomainEvent.id) > before).order_by(col(DomainEvent.id)))
        )
    assert await rounds.drain() == len(emitted) + 3

    to_all = [r for r in receiver.requests if r.path == "/hooks/loopline"]
    to_cases = [r for r in receiver.requests if r.path == "/hooks/loopline/cases"]
    assert len(to_all) + len(to_cases) == len(receiver.requests)
    assert all(verify(everything["secret"], r) for r in to_all), "signed with the subscription's own secret"
    assert all(verify(cases["secret"], r) for r in to_cases)
    all_events, case_events = [r.event for r in to_all], [r.event for r in to_cases]

    # The "*" subscriber gets everything since it subscribed, in event order, and nothing from before.
    assert [e["id"] for e in all_events] == [e.id for e in emitted]
    types = [e["type"] for e in all_events]
    assert {"nc.created", "batch.held", "advisory.drafted"} <= set(types)
    assert types.count("case.created") == 3
    assert before not in [e["id"] for e in all_events]
    # The "case.*" subscriber gets the three cases and nothing else.
    assert [e["type"] for e in case_events] == ["case.created"] * 3
    first = emitted[0]
    assert all_events[0] == {
        "id": first.id,
        "type": first.type,
        "occurred_at": first.occurred_at.isoformat().replace("+00:00", "Z"),
        "subject_type": first.subject_type,
        "subject_id": first.subject_id,
        "actor": first.actor,
        "payload": first.payload,
    }
    for request in receiver.requests:
        assert request.headers["loopline-event-id"] == str(request.event["id"])
        assert request.headers["loopline-event-type"] == request.event["type"]
        assert request.headers["content-type"] == "application/json"
    tampered = replace(receiver.requests[0], body=receiver.requests[0].body.replace(b'"id"', b'"id" '))
    assert not verify(everything["secret"], tampered)

    listed = await deliveries(world_client, admin, cases["id"])
    assert [(d["event_type"], d["status"], d["attempts"]) for d in listed] == [("case.created", "delivered", 1)] * 3
    assert listed[0]["history"][0]["status_code"] == 204
    assert await rounds.drain() == 0, "nothing is sent twice"


async def test_a_receiver_answering_500_gets_retries_with_backoff_then_each_event_once_in_order(
    world_client: AsyncTestClient[Any], admin: Headers, rounds: Rounds, receiver: Receiver
) -> None:
    subscription = await subscribe(world_client, admin, receiver.url)
    events = await rounds.emit("test.one", "test.two", "test.three")
    start = rounds.clock.now()
    receiver.status = 500

    # One request per round while the receiver fails, first attempts in event order.
    assert await rounds.drain() == 3
    assert [r.event["id"] for r in receiver.requests] == events
    rounds.clock.advance(timedelta(seconds=9))
    assert await rounds.drain() == 0, "10 s before the first retry"
    rounds.clock.advance(timedelta(seconds=1))
    assert await rounds.drain() == 3
    rounds.clock.advance(timedelta(seconds=19))
    assert await rounds.drain() == 0, "then 20 s"

    receiver.status = 200
    rounds.clock.advance(timedelta(seconds=1))
    assert await rounds.drain() == 3
    assert [e["id"] for e in receiver.accepted()] == events, "each event once, in order"
    assert len(receiver.requests) == 9
    assert all(verify(subscription["secret"], r) for r in receiver.requests)
    assert await rounds.drain() == 0

    listed = await deliveries(world_client, admin, subscription["id"])
    assert [d["event_id"] for d in listed] == events
    for delivery in listed:
        assert (delivery["status"], delivery["attempts"], delivery["next_attempt_at"]) == ("delivered", 3, None)
        assert [a["status_code"] for a in delivery["history"]] == [500, 500, 200]
        assert [at(a["attempted_at"]) - start for a in delivery["history"]] == [
            timedelta(0),
            timedelta(seconds=10),
            timedelta(seconds=30),
        ]
        assert at(delivery["settled_at"]) == start + timedelta(seconds=30)


async def test_a_receiver_that_never_answers_does_not_delay_another(
    world_client: AsyncTestClient[Any], admin: Headers, rounds: Rounds, receiver: Receiver, black_hole: str
) -> None:
    silent = await subscribe(world_client, admin, black_hole)
    await subscribe(world_client, admin, receiver.url)
    events = await rounds.emit("test.a", "test.b", "test.c")

    started = time.monotonic()
    await deliver_due(rounds.runtime, rounds.client)
    took = time.monotonic() - started
    assert took >= TIMEOUT_S, "the silent receiver was waited for, up to the timeout"
    assert [e["id"] for e in receiver.accepted()] == events
    assert max(r.at for r in receiver.requests) - started < TIMEOUT_S / 2, "while the other was served at once"

    [first, *rest] = await deliveries(world_client, admin, silent["id"])
    assert first["attempts"] == 1
    assert first["history"][0]["error"].startswith("ReadTimeout")
    assert first["history"][0]["status_code"] is None
    assert at(first["next_attempt_at"]) == rounds.clock.now() + timedelta(seconds=10)
    assert [(d["attempts"], d["status"]) for d in rest] == [(0, "pending")] * 2, "one timeout per round, not three"


async def test_an_unreachable_receiver_is_retried_for_a_day_then_given_up(
    world_client: AsyncTestClient[Any], admin: Headers, rounds: Rounds
) -> None:
    subscription = await subscribe(world_client, admin, f"http://127.0.0.1:{free_port()}/gone", "test.give_up")
    await rounds.emit("test.give_up", "test.other")
    queued = rounds.clock.now()

    waits = []
    while True:
        await rounds.drain()
        [delivery] = await deliveries(world_client, admin, subscription["id"])
        if delivery["status"] != "pending":
            break
        due = at(delivery["next_attempt_at"])
        waits.append(due - rounds.clock.now())
        rounds.clock.at = due

    doubling = [timedelta(seconds=10 * 2**n) for n in range(9)]  # 10 s … 2560 s
    assert waits == doubling + [timedelta(hours=1)] * 22
    assert (delivery["status"], delivery["attempts"], delivery["next_attempt_at"]) == ("failed", 32, None)
    assert all(a["error"].startswith("ConnectError") for a in delivery["history"])
    assert at(delivery["history"][-1]["attempted_at"]) - queued <= timedelta(hours=24)
    assert [d["id"] for d in await deliveries(world_client, admin, subscription["id"], status="failed")] == [
        delivery["id"]
    ]
    rounds.clock.advance(timedelta(days=2))
    assert await rounds.drain() == 0, "given up is final"


async def test_the_summary_counts_every_attempt_and_the_events_still_owed(
    world_client: AsyncTestClient[Any], admin: Headers, rounds: Rounds, receiver: Receiver
) -> None:
    async def summary() -> dict[str, Any]:
        response = await world_client.get(f"{API}/summary", headers=admin)
        assert response.status_code == 200, response.text
        figures: dict[str, Any] = response.json()
        return figures

    before = await summary()
    assert before["outbox_depth"] == 0, "earlier tests' subscriptions are off"
    await subscribe(world_client, admin, receiver.url, "test.*")
    await subscribe(world_client, admin, f"http://127.0.0.1:{free_port()}/gone", "test.owed")
    await rounds.emit("test.owed", "test.two", "other.ignored", "test.three")
    # Not queued yet: three for the first subscription, one for the second.
    assert (await summary())["outbox_depth"] == 4

    receiver.status = 503
    await rounds.drain()
    receiver.status = 200
    rounds.clock.advance(timedelta(seconds=10))
    await rounds.drain()

    after = await summary()
    # The receiver: a 503 for each event (one request a round), then three deliveries;
    # the unreachable one: two failed attempts.
    attempts, successful = before["attempts"] + 8, before["successful_attempts"] + 3
    assert (after["attempts"], after["successful_attempts"]) == (attempts, successful)
    assert after["success_rate"] == round(successful / attempts, 4)
    assert (after["delivered"], after["failed"]) == (before["delivered"] + 3, before["failed"])
    assert after["outbox_depth"] == 1, "the unreachable receiver's event is still owed"


async def test_only_admins_manage_webhooks_and_bad_input_is_refused_with_a_code(
    world_client: AsyncTestClient[Any], world_login: Login, admin: Headers, rounds: Rounds, receiver: Receiver
) -> None:
    qa = await world_login("qa.manager")
    assert (await world_client.post(API, json={"url": receiver.url}, headers=qa)).status_code == 403
    assert (await world_client.get(API, headers=qa)).status_code == 403

    for url in [
        "not a url",
        "ftp://example.com/hook",
        "/relative/hook",
        "http://",
        "javascript:alert(1)",
        "https://xn--/",
    ]:
        response = await world_client.post(API, json={"url": url}, headers=admin)
        assert response.status_code == 400, (url, response.text)
        assert response.json()["error"]["code"] == "invalid_url"
    for body in [{"url": receiver.url, "event_types": ["Case Created"]}, {"url": receiver.url, "event_types": "*"}, {}]:
        response = await world_client.post(API, json=body, headers=admin)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "validation_error"

    created = await subscribe(world_client, admin, receiver.url, "case.*")
    shown = await world_client.get(f"{API}/{created['id']}", headers=admin)
    assert shown.status_code == 200
    assert "secret" not in shown.json(), "the secret is shown once, at creation"
    assert all("secret" not in s for s in (await world_client.get(API, headers=admin)).json()["items"])
    patched = await world_client.patch(f"{API}/{created['id']}", json={"url": "gopher://x"}, headers=admin)
    assert patched.json()["error"]["code"] == "invalid_url"
    missing = await world_client.patch(f"{API}/{'0' * 36}", json={"active": False}, headers=admin)
    assert missing.status_code == 404

    # Switched off, it misses what happens meanwhile; switched on, it gets what follows.
    off = await world_client.patch(f"{API}/{created['id']}", json={"active": False}, headers=admin)
    assert off.json()["active"] is False
    await rounds.emit("case.while_off")
    await world_client.patch(f"{API}/{created['id']}", json={"active": True}, headers=admin)
    [after] = await rounds.emit("case.after")
    await rounds.drain()
    assert [e["id"] for e in receiver.accepted()] == [after]


async def test_the_server_delivers_on_its_own(world_settings: Settings, rounds: Rounds, receiver: Receiver) -> None:
    settings = replace(world_settings, webhook_interval_s=0.05)
    async with AsyncTestClient(create_app(settings)) as client:
        tokens = await sign_in(client, "admin")
        await subscribe(client, {"Authorization": f"Bearer {tokens['access_token']}"}, receiver.url)
        [event] = await rounds.emit("test.live")
        for _ in range(200):
            if receiver.accepted():
                break
            await asyncio.sleep(0.05)
    assert [e["id"] for e in receiver.accepted()] == [event]


# What a black-box test registered and got answers from, and other spellings of the same places.
INTERNAL_URLS = [
    "http://127.0.0.1/",
    "http://localhost:8000/api/v1/admin/users",
    "http://0.0.0.0/",
    "http://2130706433/",
    "http://127.1/",
    "http://0x7f.0.0.1/",
    "http://127.0.0.1./",
    "http://LOCALHOST./",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://metadata.google.internal/",
    "http://10.1.2.3/",
    "http://[fd00:ec2::254]/",
    "http://224.0.0.1/",
]


async def test_webhooks_to_internal_addresses_are_refused_at_registration(world_settings: Settings) -> None:
    async with AsyncTestClient(create_app(replace(world_settings, webhook_allowed_hosts=""))) as client:
        admin = {"Authorization": f"Bearer {(await sign_in(client, 'admin'))['access_token']}"}

        async def refused(method: str, path: str, url: str) -> tuple[int, str, str]:
            response = await client.request(method, path, json={"url": url}, headers=admin)
            error = response.json()["error"]
            return response.status_code, error["code"], error["details"].get("reason")

        for url in INTERNAL_URLS:
            assert (await refused("POST", API, url))[:2] == (400, "address_not_allowed"), url
        for url, reason in [
            ("https://user:secret@hooks.example.com/", "credentials"),
            ("https://hooks.example.com:0/", "port"),
            ("https://hooks.example.com:65536/", "port"),
            ("gopher://hooks.example.com/", "syntax"),
            ("http://%31%32%37.0.0.1/", "host"),
        ]:
            assert await refused("POST", API, url) == (400, "invalid_url", reason), url

        response = await client.post(API, json={"url": "https://hooks.example.com/x", "active": False}, headers=admin)
        assert response.status_code == 201, response.text
        path = f"{API}/{response.json()['id']}"
        assert await refused("PATCH", path, "http://[::ffff:a9fe:a9fe]/") == (400, "address_not_allowed", "link-local")
        assert await refused("PATCH", path, "https://admin@hooks.example.com/") == (400, "invalid_url", "credentials")


async def test_each_delivery_checks_the_address_it_connects_to(
    world_client: AsyncTestClient[Any],
    world_settings: Settings,
    admin: Headers,
    rounds: Rounds,
    receiver: Receiver,
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    # Names pass registration; what they resolve to is checked when a delivery connects.
    rebinding = await subscribe(world_client, admin, f"http://rebind.test:{port}/hooks/loopline")
    # Allowed in this world (the receivers' 127.0.0.1), so it was registered; the check at delivery
    # holds on its own when the allow-list no longer names it.
    spelled = await subscribe(world_client, admin, f"http://2130706433:{port}/hooks/loopline")
    [event] = await rounds.emit("test.rebinding")

    # A name that resolved to a public address at registration answers 127.0.0.1 now;
    # also a mixed answer is refused, so no fallback reaches the internal address.
    for answer in (["127.0.0.1"], ["93.184.216.34", "127.0.0.1"]):
        dns = Resolver({"rebind.test": answer})
        async with new_client(replace(world_settings, webhook_allowed_hosts=""), resolver=dns) as strict:
            assert await deliver_due(rounds.runtime, strict) == 2
        rounds.clock.advance(retry_delay(1))
        assert dns.asked == ["rebind.test"]
    assert receiver.requests == [], "nothing reached the internal receiver"
    for subscription, host in ((rebinding, "rebind.test"), (spelled, "127.0.0.1")):
        [delivery] = await deliveries(world_client, admin, subscription["id"])
        errors = [attempt["error"] for attempt in delivery["history"]]
        assert (
            errors
            == [
                f"AddressRefused {host} leads to an address that is not public (loopback); "
                "webhooks go to public addresses unless LOOPLINE_WEBHOOK_ALLOWED_HOSTS names the host"
            ]
            * 2
        )

    # Named in the allow-list, the name is resolved by the resolver given (the system's DNS
    # knows no `rebind.test`) and the request keeps the name in its Host header.
    dns = Resolver({"rebind.test": ["127.0.0.1"]})
    allowed = replace(world_settings, webhook_allowed_hosts=f"rebind.test:{port},127.0.0.1")
    async with new_client(allowed, resolver=dns) as client:
        rounds.clock.advance(retry_delay(2))
        assert await deliver_due(rounds.runtime, client) == 2
    assert dns.asked == ["rebind.test"]
    assert [r.event["id"] for r in receiver.requests] == [event, event]
    assert sorted(r.headers["host"] for r in receiver.requests) == [f"2130706433:{port}", f"rebind.test:{port}"]


async def test_what_a_receiver_answers_is_not_kept_beyond_its_status(
    world_client: AsyncTestClient[Any], admin: Headers, rounds: Rounds
) -> None:
    with (
        answering(b"-ERR secret-redis-reply\r\n\r\n") as redis_like,
        answering(
            b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\n"
            b"Content-Length: 15\r\n\r\nsecret-metadata"
        ) as redirecting,
    ):
        not_http = await subscribe(world_client, admin, redis_like)
        moved = await subscribe(world_client, admin, redirecting)
        await rounds.emit("test.answers")
        assert await rounds.drain() == 2
    [garbled] = (await deliveries(world_client, admin, not_http["id"]))[0]["history"]
    assert (garbled["status_code"], garbled["error"]) == (None, "RemoteProtocolError")
    [redirected] = (await deliveries(world_client, admin, moved["id"]))[0]["history"]
    assert (redirected["status_code"], redirected["error"]) == (302, None), "the redirect is not followed"
    listed = (await world_client.get(f"{API}/{not_http['id']}/deliveries", headers=admin)).text
    listed += (await world_client.get(f"{API}/{moved['id']}/deliveries", headers=admin)).text
    assert "secret" not in listed


def test_the_cursor_waits_at_a_gap_in_event_ids_until_it_is_old() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    fresh, old = now, now - GAP_GRACE - timedelta(seconds=1)
    horizon = now - GAP_GRACE
    assert settled_through(4, [(5, fresh), (6, fresh)], horizon) == 6
    # Id 7 may still commit (PostgreSQL): 8 waits, unless it is older than the grace.
    assert settled_through(6, [(8, fresh), (9, fresh)], horizon) == 6
    assert settled_through(6, [(8, old), (9, fresh)], horizon) == 9
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 9, 10, 30)] == [10, 20, 40, 2560, 3600, 3600]
