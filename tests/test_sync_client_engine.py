"""SyncEngine's reactions to each protocol answer, with a scripted transport (no server).

Each test scripts the server's answers and checks what the engine sends next and what
happens to the outbox, the read model and its status. Backoff sleeps are recorded, not
slept, and jitter comes from a seeded RNG.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from loopline_sync import MAX_ARGS_DEPTH, MAX_PUSH_BYTES
from loopline_sync.auth import Auth
from loopline_sync.backoff import Backoff
from loopline_sync.engine import SyncEngine
from loopline_sync.errors import (
    AuthenticationFailed,
    ClientOwnedByOtherUser,
    ClientTooOld,
    NetworkError,
    OutboxInconsistent,
    RetriesExhausted,
    SyncStatus,
    UnexpectedResponse,
    UnsendableMutation,
)
from loopline_sync.store import LocalStore
from tests.test_sync_client_doubles import (
    ScriptedTransport,
    Sleeps,
    ack,
    captive_portal,
    delete,
    error,
    json_response,
    page,
    put,
)

NOW = datetime(2026, 11, 23, 8, 10, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    store = LocalStore(tmp_path / "device.sqlite")
    yield store
    store.close()


class Rig:
    def __init__(self, store: LocalStore, *, user: str = "user-a", **engine_kwargs: Any) -> None:
        self.store = store
        self.transport = ScriptedTransport(user)
        self.sleeps = Sleeps()
        self.auth = Auth(self.transport, "wang.lei", "secret", clock=lambda: NOW)
        self.engine = SyncEngine(
            store,
            self.transport,
            self.auth,
            rng=random.Random(42),
            sleep=self.sleeps,
            clock=lambda: NOW,
            **engine_kwargs,
        )

    async def enqueue(self, n: int) -> list[int]:
        return [await self.engine.enqueue("message.post", {"thread_id": "t1", "body": f"hello {i}"}) for i in range(n)]

    @property
    def pushes(self) -> list[Any]:
        return [s for s in self.transport.sync_requests if s.path.endswith("/push")]

    @property
    def pulls(self) -> list[Any]:
        return [s for s in self.transport.sync_requests if s.path.endswith("/pull")]


# -- push --------------------------------------------------------------------------


async def test_push_sends_the_outbox_oldest_first_in_batches(store: LocalStore) -> None:
    rig = Rig(store, batch_size=2)
    assert await rig.enqueue(5) == [1, 2, 3, 4, 5]
    rig.transport.reply(ack, ack, ack)
    await rig.engine.push()
    assert [p.mids for p in rig.pushes] == [[1, 2], [3, 4], [5]]
    body = rig.pushes[0].body
    assert body["client_id"] == store.client_id
    assert body["schema_version"] == 1
    first = body["mutations"][0]
    assert set(first) == {"mid", "id", "name", "args", "client_ts"}
    assert first["name"] == "message.post"
    assert first["client_ts"] == "2026-11-23T08:10:00.000Z"
    assert store.outbox_size() == 0
    assert rig.engine.status is SyncStatus.IDLE
    assert rig.engine.stats.applied == 5
    assert rig.sleeps.delays == []


async def test_only_mids_up_to_last_mid_are_dropped(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(4)
    rig.transport.reply(lambda r: ack(r, last_mid=2), ack)
    await rig.engine.push()
    assert [p.mids for p in rig.pushes] == [[1, 2, 3, 4], [3, 4]]
    assert store.outbox_size() == 0


@pytest.mark.parametrize(
    "not_an_ack",
    [
        captive_portal(),
        json_response(200, {"ok": True}),
        json_response(200, {"client_id": "someone-else", "server_epoch": "e", "last_mid": 3, "results": []}),
    ],
    ids=["captive-portal", "other-json", "other-client-id"],
)
async def test_a_200_that_is_not_our_acknowledgement_drops_nothing(store: LocalStore, not_an_ack: Any) -> None:
    rig = Rig(store)
    await rig.enqueue(3)
    seen: list[list[int]] = []

    def check_then_ack(request: dict[str, Any]) -> Any:
        seen.append(store.outbox_mids())
        return ack(request)

    rig.transport.reply(not_an_ack, check_then_ack)
    await rig.engine.push()
    assert seen == [[1, 2, 3]]  # untouched after the bogus 200
    assert [p.mids for p in rig.pushes] == [[1, 2, 3], [1, 2, 3]]
    assert len(rig.sleeps.delays) == 1  # handled like a network error: backoff, then resend
    assert rig.engine.last_error is not None
    assert rig.engine.last_error.code == "not_protocol_json"


async def test_rejected_results_are_surfaced_and_still_acknowledged(store: LocalStore) -> None:
    seen: list[Any] = []
    rig = Rig(store, on_results=seen.extend)
    await rig.enqueue(2)
    rig.transport.reply(lambda r: ack(r, status="rejected"))
    await rig.engine.push()
    assert store.outbox_size() == 0
    assert rig.engine.stats.rejected == 2
    assert [r.error.code for r in rig.engine.rejections if r.error] == ["stale_transition"] * 2
    assert len(seen) == 2


async def test_mutation_gap_resends_from_the_expected_mid(store: LocalStore) -> None:
    rig = Rig(store, batch_size=2)
    await rig.enqueue(5)
    rig.transport.reply(error(409, "mutation_gap", {"expected_mid": 2}), ack, ack, ack)
    await rig.engine.push()
    assert [p.mids for p in rig.pushes] == [[1, 2], [2, 3], [4, 5]]
    assert store.outbox_size() == 0
    assert rig.engine.stats.gaps == 1
    assert rig.engine.last_error is not None
    assert rig.engine.last_error.code == "mutation_gap"


async def test_a_gap_before_mids_already_dropped_is_a_fatal_inconsistency(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(2)
    rig.transport.reply(ack)
    await rig.engine.push()
    await rig.enqueue(2)  # mids 3, 4; 1 and 2 were acknowledged and dropped
    rig.transport.reply(error(409, "mutation_gap", {"expected_mid": 1}))
    with pytest.raises(OutboxInconsistent):
        await rig.engine.push()
    assert store.outbox_mids() == [3, 4]
    assert rig.engine.status is SyncStatus.INCONSISTENT
    # Sticky: no further request is sent until a person looks.
    sent = len(rig.transport.sent)
    with pytest.raises(OutboxInconsistent):
        await rig.engine.push()
    assert len(rig.transport.sent) == sent


async def test_413_halves_the_batch_until_it_fits(store: LocalStore) -> None:
    rig = Rig(store, batch_size=8)
    await rig.enqueue(8)
    too_large = error(413, "payload_too_large")
    rig.transport.reply(too_large, too_large, ack, ack, ack, ack)
    await rig.engine.push()
    assert [len(p.mids) for p in rig.pushes] == [8, 4, 2, 2, 2, 2]
    assert store.outbox_size() == 0
    assert rig.engine.stats.batch_halvings == 2
    assert rig.sleeps.delays == []


async def test_413_at_batch_size_one_backs_off_and_retries(store: LocalStore) -> None:
    rig = Rig(store, batch_size=1)
    await rig.enqueue(1)
    rig.transport.reply(error(413, "payload_too_large"), ack)
    await rig.engine.push()
    assert [p.mids for p in rig.pushes] == [[1], [1]]
    assert len(rig.sleeps.delays) == 1


def nested(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


def cycle() -> dict[str, Any]:
    looped: dict[str, Any] = {}
    looped["self"] = looped
    return looped


# What the server would refuse as a whole push: queued, it would stop the outbox for ever.
UNSENDABLE: dict[str, tuple[Any, Any, str | None]] = {
    "one mutation beyond the push limit": ("message.post", {"body": "x" * MAX_PUSH_BYTES}, None),
    "an empty name": ("", {}, None),
    "a name that is no string": (7, {}, None),
    "a name with a NUL": ("message\x00post", {}, None),
    "a mutation id with a NUL": ("message.post", {}, "id\x00"),
    "args that are no dict": ("message.post", ["body"], None),
    "a value that is no JSON": ("message.post", {"mentions": {"lena"}}, None),
    "a key that is no JSON": ("message.post", {("a", "b"): 1}, None),
    "a lone surrogate (no UTF-8)": ("message.post", {"body": "\ud800"}, None),
    "a NaN": ("message.post", {"value": float("nan")}, None),
    "a nesting past the limit": ("message.post", {"deep": nested(MAX_ARGS_DEPTH)}, None),
    "a cycle": ("message.post", cycle(), None),
}


@pytest.mark.parametrize("mutation", UNSENDABLE.values(), ids=UNSENDABLE.keys())
async def test_enqueue_refuses_what_could_never_be_pushed(
    store: LocalStore, mutation: tuple[Any, Any, str | None]
) -> None:
    name, args, mutation_id = mutation
    rig = Rig(store)
    with pytest.raises(UnsendableMutation):
        await rig.engine.enqueue(name, args, id=mutation_id)
    assert store.outbox_size() == 0
    assert store.next_mid == 1


async def test_enqueue_queues_content_the_server_rejects_per_mutation(store: LocalStore) -> None:
    """A NUL in a body, a huge number, the deepest allowed nesting: the server judges them one by one."""
    rig = Rig(store)
    await rig.engine.enqueue(
        "message.post", {"body": "a\x00b", "mentions": [2**80], "deep": nested(MAX_ARGS_DEPTH - 1)}
    )
    assert store.outbox_size() == 1


async def test_401_renews_the_token_and_resends_the_same_batch(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(3)
    during: list[list[int]] = []

    def unauthorized(request: dict[str, Any]) -> Any:
        during.append(store.outbox_mids())
        return error(401, "not_authenticated")

    rig.transport.reply(unauthorized, ack)
    await rig.engine.push()
    first, second = rig.pushes
    assert first.body == second.body  # same mids, same mutation ids, same everything
    assert first.token != second.token
    assert during == [[1, 2, 3]]
    auth_calls = [s.path for s in rig.transport.sent if s.path.startswith("/api/v1/auth/")]
    assert auth_calls == ["/api/v1/auth/login", "/api/v1/auth/refresh"]
    assert rig.transport.sent[2].body == {"refresh_token": "refresh-1"}
    assert rig.sleeps.delays == []
    assert store.outbox_size() == 0


async def test_refused_refresh_falls_back_to_a_new_login(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(1)
    await rig.auth.login()
    rig.transport.reply_auth(error(401, "refresh_token_reused"))
    rig.transport.reply(error(401, "not_authenticated"), ack)
    await rig.engine.push()
    auth_calls = [s.path for s in rig.transport.sent if s.path.startswith("/api/v1/auth/")]
    assert auth_calls == ["/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/login"]
    assert rig.pushes[1].token == rig.auth.access_token
    assert store.outbox_size() == 0


async def test_rotated_refresh_token_is_kept(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.auth.login()
    await rig.auth.refresh()
    await rig.auth.refresh()
    refreshes = [s.body for s in rig.transport.sent if s.path.endswith("/refresh")]
    assert refreshes == [{"refresh_token": "refresh-1"}, {"refresh_token": "refresh-2"}]
    assert rig.auth.user_id == "user-a"


async def test_wrong_password_stops_with_the_outbox_intact(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(2)
    rig.transport.reply_auth(error(401, "invalid_credentials"))
    with pytest.raises(AuthenticationFailed) as stopped:
        await rig.engine.push()
    assert stopped.value.code == "invalid_credentials"
    assert rig.engine.status is SyncStatus.AUTH_FAILED
    assert store.outbox_mids() == [1, 2]
    assert rig.pushes == []


async def test_403_other_user_stops_and_keeps_the_outbox(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(2)
    rig.transport.reply(error(403, "client_owned_by_other_user"))
    with pytest.raises(ClientOwnedByOtherUser):
        await rig.engine.push()
    assert rig.engine.status is SyncStatus.OWNED_BY_OTHER_USER
    assert store.outbox_mids() == [1, 2]


async def test_another_user_never_pushes_or_pulls_the_owners_queue(store: LocalStore) -> None:
    owner = Rig(store, user="user-a")
    await owner.auth.login()
    await owner.enqueue(2)  # binds the queue to user-a
    other = Rig(store, user="user-b")
    with pytest.raises(ClientOwnedByOtherUser):
        await other.engine.push()
    with pytest.raises(ClientOwnedByOtherUser):
        await other.engine.pull()
    assert other.transport.sync_requests == []  # refused locally, nothing sent
    with pytest.raises(ClientOwnedByOtherUser):
        await other.enqueue(1)
    assert store.outbox_mids() == [1, 2]
    # The owner signs in again: the queue goes out.
    owner.transport.reply(ack)
    await owner.engine.push()
    assert store.outbox_size() == 0


async def test_426_stops_with_a_clear_error(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(1)
    rig.transport.reply(error(426, "client_too_old"))
    with pytest.raises(ClientTooOld, match="update"):
        await rig.engine.push()
    assert rig.engine.status is SyncStatus.CLIENT_TOO_OLD
    assert store.outbox_mids() == [1]
    with pytest.raises(ClientTooOld):
        await rig.engine.pull()


async def test_unexpected_status_stops_instead_of_spinning(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(1)
    rig.transport.reply(error(400, "validation_error"))
    with pytest.raises(UnexpectedResponse):
        await rig.engine.push()
    assert store.outbox_mids() == [1]


async def test_503_and_network_errors_back_off_on_a_timer_with_jitter(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(1)
    unavailable = error(503, "unavailable", headers={"Retry-After": "2"})
    rig.transport.reply(NetworkError("refused"), NetworkError("reset"), unavailable, NetworkError("timeout"), ack)
    await rig.engine.push()
    assert len(rig.pushes) == 5
    assert store.outbox_size() == 0
    d = rig.sleeps.delays
    assert len(d) == 4
    assert 0 <= d[0] <= 0.5
    assert 0 <= d[1] <= 1.0
    assert d[2] == 2.0  # Retry-After is a floor; the jitter ceiling at this step is 2 s too
    assert 0 <= d[3] <= 4.0
    assert rig.engine.stats.retries == 4


async def test_backoff_is_capped_and_reproducible() -> None:
    backoff = Backoff()
    a = [backoff.delay(n, random.Random(3)) for n in range(1, 40)]
    b = [backoff.delay(n, random.Random(3)) for n in range(1, 40)]
    assert a == b
    assert all(0 <= x <= 30.0 for x in a)
    assert backoff.delay(1, random.Random(3), retry_after=10_000) == 300.0
    rng = random.Random(5)
    assert max(backoff.delay(12, rng) for _ in range(200)) > 20  # full jitter reaches the cap region


async def test_max_attempts_gives_up_with_the_outbox_intact(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(2)
    rig.transport.reply(*[NetworkError("down")] * 3)
    with pytest.raises(RetriesExhausted):
        await rig.engine.push(max_attempts=3)
    assert len(rig.pushes) == 3
    assert len(rig.sleeps.delays) == 2
    assert rig.engine.status is SyncStatus.GAVE_UP
    assert store.outbox_mids() == [1, 2]


async def test_acknowledgement_of_mids_never_issued_is_fatal(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(2)
    rig.transport.reply(lambda r: ack(r, last_mid=9))
    with pytest.raises(OutboxInconsistent):
        await rig.engine.push()
    assert store.outbox_mids() == [1, 2]


# -- pull ---------------------------------------------------------------------------


async def test_pull_pages_until_done_applying_each_page_with_its_cursor(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(3)
    rig.transport.reply(
        page("c1", [put(1, "defect", "d1", 1, title="a")], last_mid=1, has_more=True),
        page("c2", [put(2, "message", "m1", 1, body="hi"), delete(3, "defect", "d1", 2)], last_mid=2),
    )
    await rig.engine.pull()
    assert [p.body["cursor"] for p in rig.pulls] == [None, "c1"]
    assert rig.pulls[0].body == {"client_id": store.client_id, "schema_version": 1, "cursor": None, "limit": 500}
    assert store.cursor == "c2"
    assert store.snapshot() == {("message", "m1"): (1, {"body": "hi"})}
    assert store.outbox_mids() == [3]  # the pull's last_mid acknowledges too
    # The next pull continues from the stored cursor.
    rig.transport.reply(page("c3", last_mid=2))
    await rig.engine.pull()
    assert rig.pulls[-1].body["cursor"] == "c2"


async def test_reset_required_rebuilds_the_read_model_and_keeps_the_outbox(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(2)
    rig.transport.reply(page("c1", [put(1, "defect", "d1", 1), put(2, "defect", "gone", 1)]))
    await rig.engine.pull()
    rig.transport.reply(
        page("ignored", [put(9, "defect", "junk", 1)], reset_required=True),
        page("e2-1", [put(1, "defect", "d1", 1)]),
    )
    await rig.engine.pull()
    assert [p.body["cursor"] for p in rig.pulls] == [None, "c1", None]
    assert store.snapshot() == {("defect", "d1"): (1, {})}
    assert store.cursor == "e2-1"
    assert store.outbox_mids() == [1, 2]
    assert rig.engine.stats.resets == 1


async def test_a_captive_portal_is_not_a_pull_page(store: LocalStore) -> None:
    rig = Rig(store)
    rig.transport.reply(captive_portal(), page("c1", [put(1, "defect", "d1", 1)]))
    await rig.engine.pull()
    assert store.cursor == "c1"
    assert len(rig.sleeps.delays) == 1


async def test_pull_last_mid_going_backwards_is_fatal(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(3)
    rig.transport.reply(ack)
    await rig.engine.push()
    rig.transport.reply(page("c1", [put(1, "defect", "d1", 1)], last_mid=1))
    with pytest.raises(OutboxInconsistent, match="lost acknowledged"):
        await rig.engine.pull()
    assert store.snapshot() == {}
    assert store.cursor is None


async def test_sync_pushes_then_pulls_and_run_until_idle_finishes(store: LocalStore) -> None:
    rig = Rig(store)
    await rig.enqueue(2)
    rig.transport.reply(NetworkError("down"), ack, page("c1", last_mid=2))
    await rig.engine.run_until_idle(max_attempts=5)
    assert [s.path.rsplit("/", 1)[1] for s in rig.transport.sync_requests] == ["push", "push", "pull"]
    assert store.outbox_size() == 0
    assert store.cursor == "c1"
    assert rig.engine.status is SyncStatus.IDLE
