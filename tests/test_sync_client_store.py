"""LocalStore: gapless mids, atomic pull pages, version ordering, resets that keep the outbox."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from loopline_sync.errors import ClientOwnedByOtherUser, OutboxInconsistent
from loopline_sync.ids import new_id
from loopline_sync.protocol import Change
from loopline_sync.store import LocalStore


def _enqueue(store: LocalStore, n: int, user: str | None = "u1") -> list[int]:
    return [
        store.enqueue(
            "message.post",
            {"i": i},
            mutation_id=new_id(),
            client_ts="2026-01-01T00:00:00.000Z",
            user_id=user,
        )
        for i in range(n)
    ]


def _put(seq: int, id_: str, version: int, **data: object) -> Change:
    return Change(seq=seq, entity="defect", id=id_, op="put", version=version, data=dict(data))


def _delete(seq: int, id_: str, version: int) -> Change:
    return Change(seq=seq, entity="defect", id=id_, op="delete", version=version)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "device.sqlite"


def test_client_id_is_made_once_and_survives_reopen(path: Path) -> None:
    with LocalStore(path) as store:
        first = store.client_id
        assert len(first) == 36
    with LocalStore(path) as store:
        assert store.client_id == first
    with LocalStore(path.with_name("other.sqlite")) as other:
        assert other.client_id != first


def test_mids_are_gapless_across_acks_and_reopen(path: Path) -> None:
    with LocalStore(path) as store:
        assert _enqueue(store, 3) == [1, 2, 3]
        assert store.ack(3) == 3
        assert store.outbox_size() == 0
    with LocalStore(path) as store:
        # The outbox drained, yet the counter continues: a rowid-style MAX+1 would restart at 1.
        assert _enqueue(store, 2) == [4, 5]
        assert [e.mid for e in store.pending(10)] == [4, 5]
        assert store.acked_mid == 3


def test_concurrent_enqueues_from_threads_and_connections_share_no_mid(path: Path) -> None:
    stores = [LocalStore(path) for _ in range(4)]
    mids: list[int] = []
    lock = threading.Lock()

    def work(store: LocalStore) -> None:
        got = _enqueue(store, 25)
        with lock:
            mids.extend(got)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(mids) == list(range(1, 101))
    assert stores[0].outbox_mids() == list(range(1, 101))
    for s in stores:
        s.close()


def test_pending_is_oldest_first_with_limit_and_from_mid(path: Path) -> None:
    with LocalStore(path) as store:
        _enqueue(store, 5)
        store.ack(1)
        entries = store.pending(2)
        assert [e.mid for e in entries] == [2, 3]
        assert entries[0].wire() == {
            "mid": 2,
            "id": entries[0].mutation_id,
            "name": "message.post",
            "args": {"i": 1},
            "client_ts": "2026-01-01T00:00:00.000Z",
        }
        assert [e.mid for e in store.pending(10, from_mid=4)] == [4, 5]


def test_ack_beyond_issued_mids_is_refused_and_drops_nothing(path: Path) -> None:
    with LocalStore(path) as store:
        _enqueue(store, 2)
        with pytest.raises(OutboxInconsistent):
            store.ack(2 + 1)
        assert store.outbox_mids() == [1, 2]
        assert store.acked_mid == 0


def test_apply_pull_page_applies_stores_cursor_and_drops_acked_outbox(path: Path) -> None:
    with LocalStore(path) as store:
        _enqueue(store, 3)
        store.apply_pull_page([_put(1, "d1", 1, title="a"), _put(2, "d2", 1, title="b")], "c1", last_mid=2)
        assert store.snapshot() == {("defect", "d1"): (1, {"title": "a"}), ("defect", "d2"): (1, {"title": "b"})}
        assert store.cursor == "c1"
        assert store.outbox_mids() == [3]
        assert store.get("defect", "d1") == (1, {"title": "a"})


def test_apply_pull_page_is_all_or_nothing(path: Path) -> None:
    with LocalStore(path) as store:
        _enqueue(store, 3)
        store.apply_pull_page([_put(1, "d1", 1, title="old")], "c1", last_mid=0)
        before = (store.snapshot(tombstones=True), store.cursor, store.outbox_mids(), store.acked_mid)
        # The third change cannot be stored (a set is not JSON): the first two were already
        # written inside the transaction when it fails.
        poisoned = [_put(2, "d1", 2, title="new"), _put(3, "d2", 1, title="x"), _put(4, "d3", 1, bad={1, 2})]
        with pytest.raises(TypeError):
            store.apply_pull_page(poisoned, "c2", last_mid=3)
        assert (store.snapshot(tombstones=True), store.cursor, store.outbox_mids(), store.acked_mid) == before
    with LocalStore(path) as reopened:  # and nothing half-done reached the file
        assert reopened.snapshot() == {("defect", "d1"): (1, {"title": "old"})}
        assert reopened.cursor == "c1"


def test_apply_pull_page_with_impossible_last_mid_changes_nothing(path: Path) -> None:
    with LocalStore(path) as store:
        _enqueue(store, 2)
        with pytest.raises(OutboxInconsistent):
            store.apply_pull_page([_put(1, "d1", 1)], "c1", last_mid=5)
        assert store.snapshot() == {}
        assert store.cursor is None
        assert store.outbox_mids() == [1, 2]


def test_older_versions_never_replace_newer_ones(path: Path) -> None:
    with LocalStore(path) as store:
        store.apply_pull_page([_put(1, "d1", 3, title="v3")], "c1", 0)
        store.apply_pull_page([_put(2, "d1", 2, title="v2")], "c2", 0)
        assert store.get("defect", "d1") == (3, {"title": "v3"})
        store.apply_pull_page([_put(3, "d1", 4, title="v4")], "c3", 0)
        assert store.get("defect", "d1") == (4, {"title": "v4"})


def test_delete_leaves_a_tombstone_that_blocks_older_puts(path: Path) -> None:
    with LocalStore(path) as store:
        store.apply_pull_page([_put(1, "d1", 2, title="v2"), _delete(2, "d1", 4)], "c1", 0)
        assert store.snapshot() == {}
        assert store.snapshot(tombstones=True) == {("defect", "d1"): (4, None)}
        store.apply_pull_page([_put(3, "d1", 3, title="stale")], "c2", 0)
        assert store.get("defect", "d1") is None
        # Same version again (scope regained): later in seq order wins.
        store.apply_pull_page([_put(4, "d1", 4, title="back")], "c3", 0)
        assert store.get("defect", "d1") == (4, {"title": "back"})


def test_reset_read_model_clears_rows_and_cursor_but_keeps_the_outbox(path: Path) -> None:
    with LocalStore(path) as store:
        _enqueue(store, 3)
        store.apply_pull_page([_put(1, "d1", 1), _delete(2, "d2", 1)], "c1", last_mid=1)
        store.reset_read_model()
        assert store.snapshot(tombstones=True) == {}
        assert store.cursor is None
        assert store.outbox_mids() == [2, 3]
        assert store.next_mid == 4
        assert store.acked_mid == 1


def test_queue_is_bound_to_its_first_user(path: Path) -> None:
    with LocalStore(path) as store:
        _enqueue(store, 1, user=None)  # before anyone signed in: no binding yet
        assert store.owner_user_id is None
        _enqueue(store, 1, user="u1")
        assert store.owner_user_id == "u1"
        with pytest.raises(ClientOwnedByOtherUser):
            _enqueue(store, 1, user="u2")
        assert store.outbox_mids() == [1, 2]
        assert store.bind_owner("u2") == "u1"


def test_a_file_from_a_newer_app_is_refused(path: Path) -> None:
    LocalStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RuntimeError, match="newer app"):
        LocalStore(path)
