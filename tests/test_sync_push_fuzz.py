"""Standing check: no mutation body, however hostile, stops an outbox.

For every registered mutation name, hypothesis makes args from the fields the handlers
know and from hostile values (NUL and other control characters, lone surrogates, huge
strings and numbers, deep nesting, wrong types, unicode ids), interleaved with valid
mutations. Through the real sync engine against the real server and database:

- every push of a well-formed envelope is answered 200 (the engine stops on anything
  else), so a rejection is always one mutation's;
- the outbox drains: `last_mid` moves past every queued mutation, each recorded once;
- every valid mutation is applied.

What the engine refuses to queue (`UnsendableMutation`) never reaches the outbox; the
raw variant sends such content anyway, as a browser could (`\\ud800` escapes, `1e400`).
`LOOPLINE_PUSH_FUZZ_EXAMPLES` sets the number of examples of each test (default 25).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlmodel import col, select

from loopline.core.settings import Settings
from loopline.syncing.models import AppliedMutation
from loopline.syncing.push import MUTATIONS
from loopline_sync import MAX_ARGS_DEPTH
from loopline_sync.engine import SyncEngine
from loopline_sync.errors import UnsendableMutation
from loopline_sync.store import LocalStore
from tests.sync_helpers import Device, batch_of_lot_018, new_thread
from tests.sync_world import Handset, World, no_wait, world

EXAMPLES = int(os.environ.get("LOOPLINE_PUSH_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
HUGE_FLOAT = "__huge_float__"


def _arg_models() -> set[type[BaseModel]]:
    """The args models of the modules that register mutation handlers."""
    modules = {sys.modules[getattr(handler, "apply", handler).__module__] for handler in MUTATIONS.values()}
    return {
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__
    }


KNOWN_FIELDS = sorted({name for model in _arg_models() for name in model.model_fields})


# -- hostile values -------------------------------------------------------------------------

control_text = st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=8)
lone_surrogates = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
with_nul = st.builds(lambda before, after: f"{before}\x00{after}", st.text(max_size=8), st.text(max_size=8))
huge_text = st.sampled_from([20_001, 70_000, 300_000]).map(lambda size: "ü" * size)
unicode_ids = st.text(st.characters(min_codepoint=0x80), min_size=1, max_size=40)
hostile_text = st.one_of(control_text, lone_surrogates, with_nul, huge_text, unicode_ids, st.text(max_size=30))
hostile_numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**31, 2**63, -(2**63) - 1, 2**64, 10**40, 0, -1]),
    st.floats(allow_nan=False),
)
scalars = st.one_of(st.none(), st.booleans(), hostile_numbers, hostile_text)


def deep(levels: int) -> Any:
    value: Any = "deep"
    for level in range(levels):
        value = [value] if level % 2 else {"d": value}
    return value


hostile_values = st.one_of(
    scalars,
    st.integers(min_value=MAX_ARGS_DEPTH - 2, max_value=MAX_ARGS_DEPTH + 3).map(deep),
    st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(hostile_text, children, max_size=3),
        max_leaves=8,
    ),
)
keys = st.one_of(st.sampled_from(KNOWN_FIELDS), hostile_text)


# -- mutations ------------------------------------------------------------------------------


class Place:
    """Where wang.lei may write: a batch of his plant and a thread of his."""

    def __init__(self, batch_id: str, thread_id: str) -> None:
        self.batch_id = batch_id
        self.thread_id = thread_id

    def valid(self, kind: str) -> tuple[str, dict[str, Any]]:
        entity_id = str(uuid.uuid4())
        if kind == "defect.report":
            return kind, {
                "id": entity_id,
                "batch_id": self.batch_id,
                "defect_code": "CC-THIN",
                "severity": "minor",
                "description": "found while fuzzing",
                "captured_at": "2024-06-17T08:12:00Z",
            }
        if kind == "thread.read":
            return kind, {"thread_id": self.thread_id, "up_to_seq": 0}
        return kind, {"id": entity_id, "thread_id": self.thread_id, "body": "valid", "visibility": "internal"}

    def plausible(self) -> dict[str, Any]:
        """Real ids and fitting values, so hostile ones often reach a handler's deeper checks."""
        return {"id": str(uuid.uuid4()), "thread_id": self.thread_id, "batch_id": self.batch_id, "body": "text"}


VALID_KINDS = ["message.post", "defect.report", "thread.read"]


@st.composite
def hostile_mutation(draw: st.DrawFn, place: Place) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(sorted(MUTATIONS)))
    base = place.plausible() if draw(st.booleans()) else {}
    args = {**base, **draw(st.dictionaries(keys, hostile_values, max_size=5))}
    return name, args


def batches(place: Place) -> st.SearchStrategy[list[tuple[bool, str, dict[str, Any]]]]:
    """Valid and hostile mutations interleaved; the flag says which is which."""
    valid = st.sampled_from(VALID_KINDS).map(lambda kind: (True, *place.valid(kind)))
    hostile = hostile_mutation(place).map(lambda mutation: (False, *mutation))
    return st.lists(st.one_of(valid, hostile, hostile), min_size=1, max_size=12)


# -- the world ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def fuzz_world(sync_template: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with world(sync_template, Path(tmp_path_factory.mktemp("push-fuzz")), durable=False) as built:
        yield built


@pytest.fixture(scope="module")
async def wang(fuzz_world: World) -> Handset:
    handset = fuzz_world.handset("wang.lei")
    await handset.engine.pull()  # signs in
    return handset


def fresh_engine(w: World, wang: Handset) -> SyncEngine:
    """A new device of wang's (its own client id and outbox), so every example stands alone."""
    store = LocalStore(w.tmp / f"{uuid.uuid4().hex}.db", synchronous="NORMAL")
    w.handsets.append(Handset(wang.username, store, wang.transport, wang.engine))  # closed with the world
    return SyncEngine(store, wang.transport, wang.engine.auth, sleep=no_wait, batch_size=5)


@pytest.fixture(scope="module")
async def place(fuzz_world: World, wang: Handset) -> Place:
    reporter = Device(fuzz_world.client, await wang.engine.auth.headers())
    batch_id = await batch_of_lot_018(fuzz_world.client, reporter.headers)
    return Place(batch_id, await new_thread(fuzz_world.client, reporter, batch_id))


async def outcomes(w: World, client_id: str, mids: list[int]) -> dict[int, str]:
    async with w.runtime.db.read_session() as session:
        rows = await session.scalars(
            select(AppliedMutation).where(AppliedMutation.client_id == client_id, col(AppliedMutation.mid).in_(mids))
        )
        return {row.mid: row.status for row in rows}


# -- the checks -----------------------------------------------------------------------------


@pytest.mark.timeout(900)
@FUZZ
@given(data=st.data())
async def test_hostile_mutation_bodies_never_stop_the_engines_outbox(
    fuzz_world: World, wang: Handset, place: Place, data: st.DataObject
) -> None:
    engine = fresh_engine(fuzz_world, wang)
    queued: dict[int, bool] = {}
    for is_valid, name, args in data.draw(batches(place)):
        try:
            queued[await engine.enqueue(name, args)] = is_valid
        except UnsendableMutation:
            assert not is_valid, f"a valid {name} was refused"
    if not queued:
        return
    await engine.push(max_attempts=3)  # a request-level refusal stops the engine: the test fails

    assert engine.store.outbox_size() == 0
    assert engine.store.acked_mid == max(queued)
    recorded = await outcomes(fuzz_world, engine.client_id, list(queued))
    assert sorted(recorded) == sorted(queued), "every queued mutation is recorded once"
    assert {recorded[mid] for mid, is_valid in queued.items() if is_valid} <= {"applied"}


def raw_json(payload: Any) -> bytes:
    """ASCII JSON, as a browser writes it: lone surrogates travel as `\\u` escapes."""
    return json.dumps(payload).replace(f'"{HUGE_FLOAT}"', "1e400").encode()


@pytest.mark.timeout(900)
@FUZZ
@given(data=st.data())
async def test_hostile_mutation_bodies_a_browser_could_send_are_rejected_one_by_one(
    fuzz_world: World, wang: Handset, place: Place, data: st.DataObject
) -> None:
    raw_device = Device(fuzz_world.client, await wang.engine.auth.headers())  # a new client id
    drawn = data.draw(batches(place).filter(lambda batch: len(json.dumps(batch)) < 900_000))
    if data.draw(st.booleans()):
        drawn.append((False, "message.post", {**place.plausible(), "body": HUGE_FLOAT}))
    mutations = [raw_device.mutation(name, args) for _, name, args in drawn]
    request = {"client_id": raw_device.client_id, "schema_version": 1, "mutations": mutations}
    headers = {**raw_device.headers, "Content-Type": "application/json"}
    response = await raw_device.client.post("/api/v1/sync/push", headers=headers, content=raw_json(request))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["last_mid"] == mutations[-1]["mid"]
    statuses = [result["status"] for result in answer["results"]]
    assert [status for (is_valid, _, _), status in zip(drawn, statuses, strict=True) if is_valid] == [
        "applied" for is_valid, _, _ in drawn if is_valid
    ]
