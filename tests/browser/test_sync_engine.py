"""The PWA's JavaScript sync engine under faults, in Chromium, against a real `loopline serve`.

Faults are injected only at the network edge (Playwright's `page.route`): the engine, the
server and IndexedDB are the real ones. Every test ends the same way the Python engine's
end-to-end tests do: each mutation applied exactly once, in order (the server's own record
of applied mutations for this device's client id), and the device's read model equal to a
fresh pull by the same user through the API.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request, Route, WebSocketRoute
from sqlmodel import col, select

from loopline.core.db import Database
from loopline.core.settings import Settings
from loopline.syncing.models import AppliedMutation
from tests.browser.conftest import NewContext
from tests.browser.web import stored_rows
from tests.support import DEMO_PASSWORD, demo_world, running_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

# Bounded waits: generous, because backoff with Retry-After takes seconds, not a timing claim.
SETTLE_MS = 90_000
LOT_018 = "CN-SZ-L2-2406-018"
PUSH = "**/api/v1/sync/push"
PULL = "**/api/v1/sync/pull"
ReadModel = dict[tuple[str, str], tuple[int, Any]]


class Server:
    def __init__(self, settings: Settings, base: str) -> None:
        self.settings = settings
        self.base = base

    def applied(self, client_id: str) -> list[tuple[int, str, str]]:
        """The server's record of what it applied for `client_id`: (mid, mutation id, status)."""

        async def read() -> list[tuple[int, str, str]]:
            db = Database.open(self.settings)
            try:
                async with db.read_session() as session:
                    rows = await session.scalars(
                        select(AppliedMutation)
                        .where(AppliedMutation.client_id == client_id)
                        .order_by(col(AppliedMutation.mid))
                    )
                    return [(row.mid, row.mutation_id, row.status) for row in rows]
            finally:
                await db.close()

        # Playwright's sync API runs an event loop in this thread: read from another one.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, read()).result()

    @contextlib.contextmanager
    def _signed_in(self, username: str) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.base, timeout=30) as http:
            tokens = http.post("/api/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD}).json()
            http.headers["Authorization"] = f"Bearer {tokens['access_token']}"
            yield http

    def blob_state(self, username: str, sha256: str) -> str:
        with self._signed_in(username) as http:
            return str(http.head(f"/api/v1/blobs/{sha256}").headers["blob-state"])

    def push(self, username: str, name: str, args: dict[str, Any]) -> str:
        """One mutation by `username` from a device of their own, straight through the API; its entity id."""
        entity_id = str(uuid.uuid4())
        mutation = {"mid": 1, "id": str(uuid.uuid4()), "name": name, "args": {"id": entity_id, **args}}
        with self._signed_in(username) as http:
            body = {"client_id": str(uuid.uuid4()), "schema_version": 1, "mutations": [mutation]}
            [result] = http.post("/api/v1/sync/push", json=body).json()["results"]
        assert result["status"] == "applied", result
        return entity_id

    def fresh_pull(self, username: str) -> ReadModel:
        """What a brand-new device of `username` holds after its initial sync, through the API."""
        with self._signed_in(username) as http:
            state: ReadModel = {}
            cursor, client_id = None, str(uuid.uuid4())
            while True:
                body = {"client_id": client_id, "schema_version": 1, "cursor": cursor, "limit": 500}
                page = http.post("/api/v1/sync/pull", json=body).json()
                for change in page["changes"]:
                    key = (change["entity"], change["id"])
                    if change["op"] == "put":
                        state[key] = (change["version"], change["data"])
                    else:
                        state.pop(key, None)
                cursor = page["cursor"]
                if not page["has_more"]:
                    return state


@contextlib.contextmanager
def world_beside_playwright(data_dir: Path) -> Iterator[Settings]:
    """A demo world of this module's own (its tests write), built and dropped in a worker
    thread: Playwright's sync API already runs an event loop in this one, and building the
    world needs `asyncio.run`."""
    world = demo_world(data_dir)
    with ThreadPoolExecutor(1) as pool:
        settings = pool.submit(world.__enter__).result()
        try:
            yield settings
        finally:
            pool.submit(world.__exit__, None, None, None).result()


@pytest.fixture(scope="module")
def sync_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with world_beside_playwright(tmp_path_factory.mktemp("pwa-sync")) as settings, running_server(settings) as base:
        yield Server(settings, base)


def without_views(page: Page) -> None:
    """The real shell page (its import map, the vendored idb, the build's modules) minus its views.

    The test drives a sync client of its own (with test options); the shell's `main.js`
    would start a second one, and its service worker would answer requests before
    `page.route` sees them.
    """
    page.route("**/app/*/app/main.js", lambda route: route.fulfill(body="", content_type="text/javascript"))


HARNESS = """
const build = document.documentElement.dataset.build;
const { createSyncClient, newId } = await import(`/app/${build}/app/sync/index.js`);
window.newId = newId;
window.sync = createSyncClient(%(options)s);
window.seen = { rejected: [], resets: 0 };
sync.addEventListener('rejected', (event) => seen.rejected.push(event.detail));
sync.addEventListener('changes', (event) => { if (event.detail.reset) seen.resets += 1; });
await sync.start();
window.syncStarted = true;
"""


class Device:
    """One tab of the PWA with the sync engine loaded, and helpers to drive it."""

    def __init__(self, page: Page, server: Server) -> None:
        self.page = page
        self.server = server

    def open(self, **options: Any) -> None:
        """Load the page and start a sync client made with `options` (createSyncClient's)."""
        self.page.goto(f"{self.server.base}/")
        self.start_engine(**options)

    def start_engine(self, **options: Any) -> None:
        harness = HARNESS % {"options": json.dumps(options)}
        self.page.add_script_tag(type="module", content=harness)
        self.page.wait_for_function("() => window.syncStarted === true", timeout=SETTLE_MS)

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def sign_in(self, username: str) -> dict[str, Any]:
        result: dict[str, Any] = self.js("([u, p]) => sync.signIn(u, p)", [username, DEMO_PASSWORD])
        return result["user"]

    def enqueue(self, name: str, args: dict[str, Any]) -> str:
        entry: dict[str, Any] = self.js("([name, args]) => sync.enqueue(name, args)", [name, args])
        return str(entry["id"])

    def settle(self) -> None:
        """Wait (bounded) until this tab has pushed everything and finished a pull after that."""
        before = self.js("() => sync.status.lastSyncedAt") or 0
        # What a tablet sees when its Wi-Fi returns: backoff waits end early (a Retry-After never does).
        self.js("() => window.dispatchEvent(new Event('online'))")
        self.page.wait_for_function(
            """before => { const s = sync.status;
                return s.leader && s.outboxCount === 0 && !s.syncing && s.lastSyncedAt > before; }""",
            arg=before,
            timeout=SETTLE_MS,
        )

    def status(self) -> dict[str, Any]:
        return dict(self.js("() => sync.status"))

    def idb(self, user_id: str, store: str) -> list[Any]:
        return stored_rows(self.page, user_id, store)

    def client_id(self, user_id: str) -> str:
        return str(
            self.js(
                """async (userId) => new Promise((resolve) => {
                    const open = indexedDB.open('loopline-user-' + userId);
                    open.onsuccess = () => {
                        const get = open.result.transaction('meta').objectStore('meta').get('client_id');
                        get.onsuccess = () => { open.result.close(); resolve(get.result); };
                    };
                })""",
                user_id,
            )
        )

    def read_model(self, user_id: str) -> ReadModel:
        return {
            (row["entity"], row["id"]): (row["version"], row["data"])
            for row in self.idb(user_id, "records")
            if row["data"] is not None
        }

    def has(self, entity: str, entity_id: str) -> bool:
        return bool(self.js("([entity, id]) => sync.get(entity, id).then(Boolean)", [entity, entity_id]))

    def find(self, entity: str, predicate: str) -> Any:
        return self.js(f"async () => (await sync.all({json.dumps(entity)})).find({predicate})")


@pytest.fixture
def device(sync_server: Server, new_context: NewContext) -> Device:
    page = new_context(sync_server.base).new_page()
    without_views(page)
    return Device(page, sync_server)


def assert_converged(device: Device, username: str, user_id: str, queued: list[str]) -> None:
    """Every mutation applied exactly once, in order; the read model equal to a fresh pull."""
    client_id = device.client_id(user_id)
    assert device.server.applied(client_id) == [
        (mid, mutation_id, "applied") for mid, mutation_id in enumerate(queued, start=1)
    ]
    assert device.status()["outboxCount"] == 0
    assert device.idb(user_id, "outbox") == []
    assert device.read_model(user_id) == device.server.fresh_pull(username)


def defect(device: Device, batch_id: str, description: str) -> dict[str, Any]:
    return {
        "id": device.js("() => newId()"),
        "batch_id": batch_id,
        "defect_code": "CC-THIN",
        "severity": "major",
        "description": description,
        "captured_at": "2024-06-17T08:12:00Z",
    }


def signed_in_inspector(device: Device) -> tuple[str, str]:
    """wang.lei on a fresh page, signed in and caught up; returns (user id, batch id of lot 018)."""
    device.open()
    user = device.sign_in("wang.lei")
    device.settle()
    batch = device.find("batch", f"b => b.lot_no === {json.dumps(LOT_018)}")
    return user["id"], batch["id"]


def pushed_mids(request: Request) -> list[int]:
    return [mutation["mid"] for mutation in json.loads(request.post_data or "{}")["mutations"]]


Handler = Callable[[Route, Request], None]


def until(page: Page, condition: Callable[[], bool]) -> None:
    """A bounded wait for something the test's own handlers record (Playwright runs them while it waits)."""
    for _ in range(SETTLE_MS // 50):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError("the condition did not come true")


def nth_calls(numbers: set[int], fault: Handler) -> Handler:
    """A route handler applying `fault` to the calls numbered in `numbers` (from 1); the rest pass."""
    calls = 0

    def handle(route: Route, request: Request) -> None:
        nonlocal calls
        calls += 1
        if calls in numbers:
            fault(route, request)
        else:
            route.continue_()

    return handle


def protocol_error(status: int, code: str, headers: dict[str, str] | None = None) -> Handler:
    """The answer of a busy server or a proxy, in the protocol's error shape."""
    body = json.dumps({"error": {"code": code, "message": f"injected {status}", "details": {}}})

    def answer(route: Route, _request: Request) -> None:
        route.fulfill(status=status, body=body, content_type="application/json", headers=headers)

    return answer


# -- faults ------------------------------------------------------------------------------


def test_a_response_dropped_after_commit_is_resent_and_answered_duplicate(device: Device) -> None:
    user_id, batch_id = signed_in_inspector(device)
    seen: list[list[int]] = []

    def commit_then_drop(route: Route, _request: Request) -> None:
        route.fetch()  # the server commits...
        route.abort("connectionreset")  # ...and the answer never arrives

    handler = nth_calls({1, 3}, commit_then_drop)

    def record(route: Route, request: Request) -> None:
        seen.append(pushed_mids(request))
        handler(route, request)

    device.page.route(PUSH, record)
    queued = [device.enqueue("defect.report", defect(device, batch_id, f"dropped {n}")) for n in range(6)]
    device.settle()

    assert seen[0][0] == 1
    assert_converged(device, "wang.lei", user_id, queued)
    assert device.status()["rejected"] == []


def test_a_duplicated_request_applies_once(device: Device) -> None:
    user_id, batch_id = signed_in_inspector(device)

    def twice(route: Route, _request: Request) -> None:
        route.fetch()
        route.fulfill(response=route.fetch())

    device.page.route(PUSH, nth_calls({1, 2}, twice))
    queued = [device.enqueue("defect.report", defect(device, batch_id, f"twice {n}")) for n in range(4)]
    device.settle()
    assert_converged(device, "wang.lei", user_id, queued)
    assert device.status()["rejected"] == []


def test_413_halves_the_batch_until_it_fits(device: Device) -> None:
    user_id, batch_id = signed_in_inspector(device)
    sizes: list[int] = []
    too_large = protocol_error(413, "payload_too_large")

    def refuse_more_than_two(route: Route, request: Request) -> None:
        mids = pushed_mids(request)
        sizes.append(len(mids))
        if len(mids) > 2:
            too_large(route, request)
        else:
            route.continue_()

    device.page.context.set_offline(True)
    queued = [device.enqueue("defect.report", defect(device, batch_id, f"large {n}")) for n in range(9)]
    device.page.route(PUSH, refuse_more_than_two)
    device.page.context.set_offline(False)
    device.settle()

    assert sizes[:3] == [9, 4, 2]
    assert_converged(device, "wang.lei", user_id, queued)


def test_a_401_in_the_middle_of_a_pull_refreshes_and_the_pull_completes(device: Device) -> None:
    refreshes: list[str] = []
    device.page.on("request", lambda r: refreshes.append(r.url) if r.url.endswith("/auth/refresh") else None)
    pulls: list[str] = []
    unauthorized_once = nth_calls({3}, protocol_error(401, "not_authenticated"))

    def count(route: Route, request: Request) -> None:
        pulls.append(request.url)
        unauthorized_once(route, request)

    device.page.route(PULL, count)
    device.open(pullLimit=20)  # qa.manager's initial sync spans several pages
    user = device.sign_in("qa.manager")
    device.settle()
    assert len(refreshes) == 1
    assert len(pulls) >= 6  # pages 1 and 2, the refused page 3, page 3 again, and at least one more
    assert_converged(device, "qa.manager", user["id"], [])


def test_a_503_outage_moves_nothing_then_everything_applies_once_in_order(device: Device) -> None:
    user_id, batch_id = signed_in_inspector(device)
    client_id = device.client_id(user_id)
    during_outage: list[int] = []

    busy = protocol_error(503, "unavailable", {"Retry-After": "1"})

    def unavailable(route: Route, request: Request) -> None:
        during_outage.append(len(device.server.applied(client_id)))
        busy(route, request)

    device.page.route(PUSH, nth_calls({1, 2, 3}, unavailable))
    queued = [device.enqueue("defect.report", defect(device, batch_id, f"outage {n}")) for n in range(5)]
    device.settle()
    assert during_outage == [0, 0, 0]
    assert_converged(device, "wang.lei", user_id, queued)


def test_a_captive_portal_page_is_never_an_acknowledgement(device: Device) -> None:
    user_id, batch_id = signed_in_inspector(device)
    portal = "<!DOCTYPE html><html><body><form action='/login'>Accept the terms</form></body></html>"

    def captive(route: Route, _request: Request) -> None:
        route.fulfill(status=200, body=portal, content_type="text/html")

    device.page.route(PUSH, nth_calls({1, 2}, captive))
    device.page.route(PULL, nth_calls({1}, captive))
    queued = [device.enqueue("defect.report", defect(device, batch_id, f"portal {n}")) for n in range(3)]
    device.settle()
    assert_converged(device, "wang.lei", user_id, queued)


def test_reset_required_rebuilds_the_read_model_and_keeps_the_outbox(device: Device) -> None:
    user_id, batch_id = signed_in_inspector(device)

    def restored_server(route: Route, request: Request) -> None:
        """The cursor now names an epoch the server no longer has (a restored database)."""
        body = json.loads(request.post_data or "{}")
        if body.get("cursor"):
            fields = json.loads(base64.urlsafe_b64decode(body["cursor"] + "=" * (-len(body["cursor"]) % 4)))
            fields["epoch"] = "restored-elsewhere"
            body["cursor"] = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")
        route.continue_(post_data=json.dumps(body))

    device.page.context.set_offline(True)
    queued = [device.enqueue("defect.report", defect(device, batch_id, f"kept {n}")) for n in range(3)]
    device.page.route(PULL, nth_calls({1}, restored_server))
    device.page.context.set_offline(False)
    device.settle()
    assert device.js("() => seen.resets") == 1
    assert_converged(device, "wang.lei", user_id, queued)


# -- photos ------------------------------------------------------------------------------

CHUNK = 1024 * 1024
NOISY_PHOTO = """async () => {
    // Noise does not compress: the downscaled JPEG still spans several 1 MiB chunks.
    const canvas = new OffscreenCanvas(3000, 2000);
    const context = canvas.getContext('2d');
    const pixels = context.createImageData(3000, 2000);
    crypto.getRandomValues(new Uint8Array(65536));
    for (let i = 0; i < pixels.data.length; i += 65536) {
        crypto.getRandomValues(pixels.data.subarray(i, Math.min(i + 65536, pixels.data.length)));
    }
    context.putImageData(pixels, 0, 0);
    const file = await canvas.convertToBlob({ type: 'image/png' });
    const { sha256 } = await sync.addPhoto(file);
    const queued = (await sync.queued()).length;
    return { sha256, queued };
}"""


def test_a_photo_upload_cut_off_halfway_resumes_from_the_servers_offset_after_a_reload(device: Device) -> None:
    signed_in_inspector(device)
    offsets: list[int] = []

    def cut_off_at_the_second_chunk(route: Route, request: Request) -> None:
        offsets.append(int(request.headers["upload-offset"]))
        if len(offsets) == 2:
            device.page.context.set_offline(True)  # the tablet leaves the Wi-Fi mid-upload
            route.abort("internetdisconnected")
        else:
            route.continue_()

    device.page.route(
        "**/api/v1/blobs/*",
        lambda route, request: (
            cut_off_at_the_second_chunk(route, request) if request.method == "PATCH" else route.continue_()
        ),
    )
    photo = device.js(NOISY_PHOTO)
    device.page.wait_for_function("() => sync.status.lastError !== null", timeout=SETTLE_MS)
    assert offsets == [0, CHUNK]

    device.page.context.set_offline(False)
    device.page.reload()
    device.start_engine()
    device.page.wait_for_function("() => sync.status.leader && sync.status.photosPending === 0", timeout=SETTLE_MS)

    after_reload = offsets[2:]
    assert after_reload[0] == CHUNK  # from the server's offset, not from zero
    assert after_reload == [CHUNK * n for n in range(1, len(after_reload) + 1)]
    assert device.server.blob_state("wang.lei", photo["sha256"]) == "complete"


# -- rejections, sign-out, live tail, tabs -----------------------------------------------


def test_a_rejected_mutation_is_kept_with_the_servers_reason_and_never_blocks_the_queue(device: Device) -> None:
    user_id, batch_id = signed_in_inspector(device)
    before = device.enqueue("defect.report", defect(device, batch_id, "before the poison"))
    poison = device.enqueue("defect.set_status", {"id": str(uuid.uuid4()), "from": "open", "to": "closed"})
    after = device.enqueue("defect.report", defect(device, batch_id, "after the poison"))
    device.settle()

    assert device.server.applied(device.client_id(user_id)) == [
        (1, before, "applied"),
        (2, poison, "rejected"),
        (3, after, "applied"),
    ]
    [kept] = device.status()["rejected"]
    assert kept["id"] == poison
    assert kept["name"] == "defect.set_status"
    assert kept["error"]["code"]  # the server's reason, shown by the views
    assert device.js("() => seen.rejected.length") == 1

    device.js("id => sync.discardRejected(id)", poison)
    assert device.status()["rejected"] == []
    assert device.read_model(user_id) == device.server.fresh_pull("wang.lei")


SIGN_OUT = "options => sync.signOut(options).then(() => null, (e) => ({ code: e.code, unsent: e.unsent }))"


def test_signing_out_keeps_unsent_changes_for_the_same_user_and_out_of_the_next_users_way(device: Device) -> None:
    user_id, batch_id = signed_in_inspector(device)
    device.page.context.set_offline(True)
    queued = [device.enqueue("defect.report", defect(device, batch_id, f"before sign-out {n}")) for n in range(2)]

    assert device.js(SIGN_OUT, {}) == {"code": "unsent_changes", "unsent": 2}
    assert device.js(SIGN_OUT, {"force": True}) is None
    assert device.js("() => sync.getSession()") is None
    assert len(device.idb(user_id, "outbox")) == 2
    assert device.idb(user_id, "records") == []  # the next user of the tablet does not see this one's data

    device.page.context.set_offline(False)
    manager = device.sign_in("qa.manager")
    device.settle()  # another user, another queue: wang.lei's stays as it was
    assert len(device.idb(user_id, "outbox")) == 2
    assert device.js(SIGN_OUT, {}) is None

    device.sign_in("wang.lei")
    device.settle()
    assert_converged(device, "wang.lei", user_id, queued)
    assert device.client_id(user_id) != device.client_id(manager["id"])


def test_changes_from_others_arrive_through_the_live_tail_without_a_pull(device: Device) -> None:
    user_id, batch_id = signed_in_inspector(device)
    reported = defect(device, batch_id, "seen live")
    device.enqueue("defect.report", reported)
    device.settle()
    thread = device.find("thread", f"t => t.subject_id === {json.dumps(reported['id'])}")
    device.page.wait_for_function("() => sync.status.live", timeout=SETTLE_MS)
    # A first message makes its author a participant, which widens who this user may see
    # (a scope change the device follows with a pull): settle that before counting.
    joined = device.server.push(
        "qa.manager", "message.post", {"thread_id": thread["id"], "body": "looking", "visibility": "internal"}
    )
    until(device.page, lambda: device.has("message", joined))
    device.settle()

    pulls: list[str] = []

    def count(route: Route, request: Request) -> None:
        pulls.append(request.url)
        route.continue_()

    device.page.route(PULL, count)
    message_id = device.server.push(
        "qa.manager", "message.post", {"thread_id": thread["id"], "body": "on my way", "visibility": "internal"}
    )
    until(device.page, lambda: device.has("message", message_id))
    assert pulls == []
    assert device.read_model(user_id) == device.server.fresh_pull("wang.lei")


def test_one_tab_leads_the_others_follow_and_take_over_when_it_closes(
    sync_server: Server, new_context: NewContext
) -> None:
    context = new_context(sync_server.base)
    first, second = Device(context.new_page(), sync_server), Device(context.new_page(), sync_server)
    for tab in (first, second):
        without_views(tab.page)
        tab.open()
    user = first.sign_in("wang.lei")
    first.settle()
    second.page.wait_for_function("() => sync.status.lastSyncedAt !== null", timeout=SETTLE_MS)
    assert not second.status()["leader"]

    batch = second.find("batch", f"b => b.lot_no === {json.dumps(LOT_018)}")
    followed = defect(second, batch["id"], "from the follower")
    queued = [second.enqueue("defect.report", followed)]
    # The leader pushed it and pulled it back; the follower re-reads and sees it.
    until(second.page, lambda: second.status()["outboxCount"] == 0 and second.has("defect", followed["id"]))
    first.page.close()
    second.page.wait_for_function("() => sync.status.leader", timeout=SETTLE_MS)
    queued.append(second.enqueue("defect.report", defect(second, batch["id"], "after the leader left")))
    second.settle()
    assert_converged(second, "wang.lei", user["id"], queued)


def test_an_ended_session_stops_sync_keeps_writing_locally_and_resumes_after_signing_in(device: Device) -> None:
    user_id, batch_id = signed_in_inspector(device)
    device.page.route(PUSH, nth_calls({1}, protocol_error(401, "not_authenticated")))
    device.page.route("**/api/v1/auth/refresh", nth_calls({1}, protocol_error(401, "session_ended")))
    queued = [device.enqueue("defect.report", defect(device, batch_id, "before the session ended"))]
    device.page.wait_for_function("() => sync.status.sessionEnded", timeout=SETTLE_MS)

    assert device.js("() => sync.getSession()") is None
    queued.append(device.enqueue("defect.report", defect(device, batch_id, "written while signed out")))
    assert [entry["id"] for entry in device.idb(user_id, "outbox")] == queued

    device.sign_in("wang.lei")
    device.settle()
    assert_converged(device, "wang.lei", user_id, queued)


def test_a_client_id_bound_to_another_user_stops_sync_and_leaves_the_outbox_alone(device: Device) -> None:
    user_id, batch_id = signed_in_inspector(device)
    pushes: list[list[int]] = []
    refuse_once = nth_calls({1}, protocol_error(403, "client_owned_by_other_user"))

    def record(route: Route, request: Request) -> None:
        pushes.append(pushed_mids(request))
        refuse_once(route, request)

    device.page.route(PUSH, record)
    queued = [device.enqueue("defect.report", defect(device, batch_id, "kept for its owner"))]
    device.page.wait_for_function("() => sync.status.stopped?.code === 'client_owned_by_other_user'", timeout=SETTLE_MS)
    device.js("() => window.dispatchEvent(new Event('online'))")  # a nudge does not restart a stopped engine
    assert pushes == [[1]]
    assert [entry["id"] for entry in device.idb(user_id, "outbox")] == queued

    device.sign_in("wang.lei")  # signing in again is the way out, once the device is straightened out
    device.settle()
    assert_converged(device, "wang.lei", user_id, queued)


def test_typing_is_throttled_and_a_signed_out_close_ends_the_session_without_reconnecting(device: Device) -> None:
    sockets: list[WebSocketRoute] = []
    frames: list[dict[str, Any]] = []

    def through(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()
        sockets.append(socket)

        def page_to_server(message: str | bytes) -> None:
            frames.append(json.loads(message))
            server.send(message)

        socket.on_message(page_to_server)

    device.page.route_web_socket("**/api/v1/ws*", through)
    signed_in_inspector(device)
    device.page.wait_for_function("() => sync.status.live", timeout=SETTLE_MS)
    thread_id = str(uuid.uuid4())

    device.js(
        "id => { for (let i = 0; i < 3; i++) sync.sendTyping(id, 'start'); sync.sendTyping(id, 'stop'); }", thread_id
    )
    device.js("id => sync.setViewing(id)", thread_id)
    until(device.page, lambda: any(frame["type"] == "viewing" for frame in frames))  # sent after the typing
    typing = [frame["state"] for frame in frames if frame["type"] == "typing"]
    assert typing == ["start", "stop"]  # three starts within the refresh interval are one

    sockets[0].close(code=4401, reason="signed out")
    device.page.wait_for_function("() => sync.status.sessionEnded && !sync.status.live", timeout=SETTLE_MS)
    device.js("id => sync.sendTyping(id, 'start')", thread_id)  # not queued for a later connection
    assert len(sockets) == 1
    assert device.js("() => sync.getSession()") is None


def test_enqueue_refuses_what_the_server_could_never_take_as_part_of_a_request(device: Device) -> None:
    signed_in_inspector(device)
    refused = device.js(
        """async () => {
            const nested = (levels) => (levels === 0 ? 'leaf' : { inner: nested(levels - 1) });
            const cyclic = {}; cyclic.self = cyclic;
            const cases = {
                too_deep: { thread_id: newId(), body: 'x', mentions: nested(32) },
                not_finite: { value: Number.NaN },
                cyclic,
                a_blob: { photo: new Blob(['x']) },
                too_large: { body: 'x'.repeat(1024 * 1024) },
            };
            const codes = {};
            for (const [name, args] of Object.entries(cases)) {
                try { await sync.enqueue('message.post', args); codes[name] = 'queued'; }
                catch (error) { codes[name] = error.code; }
            }
            const atTheLimit = { body: 'x', mentions: nested(31) };
            codes.at_the_limit = await sync.enqueue('message.post', atTheLimit).then(() => 'queued');
            return codes;
        }"""
    )
    assert refused == {
        "too_deep": "unsendable",
        "not_finite": "unsendable",
        "cyclic": "unsendable",
        "a_blob": "unsendable",
        "too_large": "too_large",
        "at_the_limit": "queued",
    }
