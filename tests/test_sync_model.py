"""Model-based: five devices doing random work through random faults always converge.

Each seed builds a fresh copy of the demo world, runs five clients (two tablets of one
inspector, the QA manager, an inspector of the other plant and a service rep) through a
random mix of writes and syncs while the transport drops, duplicates, delays, reorders
and corrupts requests, then lets the network heal and checks the invariants:

- every outbox is empty;
- each client's read model equals the server's state for its user;
- every mutation a client enqueued was applied (or rejected) exactly once, in the
  client's order: the server's records for the client are mids 1..n, holding exactly the
  client's mutation ids in order.

A failing seed reproduces on its own: `pytest tests/test_sync_model.py -k "seed-137"`.
`LOOPLINE_SYNC_SEEDS` sets how many seeds run (CI: 200; `scripts/bench` runs thousands).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from loopline.core.settings import Settings
from loopline.syncing.models import AppliedMutation
from loopline_sync.transport import Fault
from tests.sync_helpers import new_id, server_state
from tests.sync_world import Handset, World, world

SEEDS = int(os.environ.get("LOOPLINE_SYNC_SEEDS", "200"))
STEPS = 30
USERS = ["wang.lei", "wang.lei", "qa.manager", "jana.novak", "lucia.martin"]
FAULT_RATES = {
    Fault.DROP_REQUEST: 0.06,
    Fault.DROP_RESPONSE: 0.08,
    Fault.DUPLICATE: 0.05,
    Fault.DELAY: 0.03,
    Fault.REORDER: 0.04,
    Fault.PAYLOAD_TOO_LARGE: 0.03,
    Fault.UNAUTHORIZED: 0.04,
    Fault.UNAVAILABLE: 0.06,
    Fault.CAPTIVE_PORTAL: 0.03,
}
DEFECT_STATUSES = ["open", "contained", "closed"]


def local(handset: Handset, entity: str) -> list[dict[str, Any]]:
    return [data for (kind, _), (_, data) in handset.store.snapshot().items() if kind == entity and data]


def random_mutation(rng: random.Random, handset: Handset) -> tuple[str, dict[str, Any]]:
    """A plausible intent from what this device currently knows (it may be stale: that is the point)."""
    batches, defects, threads = local(handset, "batch"), local(handset, "defect"), local(handset, "thread")
    roll = rng.random()
    if batches and roll < 0.3:
        return "defect.report", {
            "id": new_id(),
            "batch_id": rng.choice(batches)["id"],
            "defect_code": "CC-THIN",
            "severity": rng.choice(["minor", "major"]),
            "description": f"d{rng.randrange(999)}",
            "captured_at": "2024-06-17T08:00:00Z",
        }
    if defects and roll < 0.45:
        defect = rng.choice(defects)
        field, value = rng.choice(
            [
                ("description", f"e{rng.randrange(99)}"),
                ("qty_affected", rng.randrange(9)),
                ("severity", rng.choice(["minor", "major", "critical"])),
            ]
        )
        return "defect.update", {"id": defect["id"], "fields": {field: value}, "base_version": defect["version"]}
    if defects and roll < 0.55:
        defect = rng.choice(defects)
        return "defect.set_status", {
            "id": defect["id"],
            "from": defect["status"],
            "to": rng.choice([s for s in DEFECT_STATUSES if s != defect["status"]]),
        }
    if threads and roll < 0.85:
        thread = rng.choice(threads)
        if rng.random() < 0.2:
            return "thread.read", {"thread_id": thread["id"], "up_to_seq": rng.randrange(1, 30)}
        return "message.post", {"id": new_id(), "thread_id": thread["id"], "body": f"m{rng.randrange(999)}"}
    if roll < 0.9:
        return "no.such.mutation", {}
    return "message.post", {"id": new_id(), "thread_id": new_id(), "body": "into the void"}


async def check_invariants(w: World, handsets: list[Handset]) -> None:
    async with w.runtime.db.read_session() as session:
        for handset in handsets:
            assert handset.store.outbox_size() == 0, handset.username
            records = list(
                await session.scalars(
                    select(AppliedMutation)
                    .where(AppliedMutation.client_id == handset.store.client_id)
                    .order_by(col(AppliedMutation.mid))
                )
            )
            assert [r.mid for r in records] == list(range(1, len(handset.enqueued) + 1))
            assert [r.mutation_id for r in records] == handset.enqueued
    for handset in handsets:
        assert handset.store.snapshot() == await server_state(w.runtime, await w.principal(handset)), handset.username


@pytest.mark.parametrize("seed", [pytest.param(seed, id=f"seed-{seed}") for seed in range(SEEDS)])
async def test_random_devices_under_random_faults_converge(
    sync_template: Settings,
    tmp_path: Path,
    seed: int,
) -> None:
    rng = random.Random(seed)
    async with world(sync_template, tmp_path, durable=False) as w:
        handsets = [
            w.handset(
                user,
                seed=seed * 10 + i,
                rates=FAULT_RATES,
                batch_size=rng.choice([1, 4, 50]),
                pull_limit=rng.choice([7, 50, 500]),
            )
            for i, user in enumerate(USERS)
        ]
        for handset in handsets:
            await handset.engine.pull()
        for _ in range(STEPS):
            handset = rng.choice(handsets)
            if rng.random() < 0.65:
                await handset.enqueue(*random_mutation(rng, handset))
            else:
                await handset.engine.sync()
        for handset in handsets:  # the network heals
            handset.transport.rates = {}
            await handset.transport.flush()
        for _ in range(2):
            for handset in handsets:
                await handset.engine.sync()
        await check_invariants(w, handsets)
