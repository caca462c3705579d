"""The client engine against the real server and database, through the fault-injecting transport."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from loopline.core.settings import Settings
from loopline.quality.models import Batch, Defect
from loopline.syncing.models import AppliedMutation, SyncClient
from loopline.threads.models import Message, Thread
from loopline_sync.errors import ClientOwnedByOtherUser
from loopline_sync.transport import Fault
from tests.sync_helpers import new_id, server_state
from tests.sync_world import Handset, World, world

LOT_018 = "CN-SZ-L2-2406-018"


async def lot_id(w: World, lot_no: str) -> str:
    async with w.runtime.db.read_session() as session:
        return (await session.scalars(select(Batch.id).where(Batch.lot_no == lot_no))).one()


def defect_args(batch_id: str, description: str) -> dict[str, Any]:
    return {
        "id": new_id(),
        "batch_id": batch_id,
        "defect_code": "CC-THIN",
        "severity": "major",
        "description": description,
        "captured_at": "2024-06-17T08:12:00Z",
    }


async def applied(w: World, handset: Handset) -> list[AppliedMutation]:
    async with w.runtime.db.read_session() as session:
        return list(
            await session.scalars(
                select(AppliedMutation)
                .where(AppliedMutation.client_id == handset.store.client_id)
                .order_by(col(AppliedMutation.mid))
            )
        )


async def assert_converged(w: World, handset: Handset) -> None:
    assert handset.store.outbox_size() == 0
    assert handset.store.snapshot() == await server_state(w.runtime, await w.principal(handset))


async def test_an_outage_of_503s_moves_nothing_then_everything_applies_once_in_order(
    sync_template: Settings, tmp_path: Path
) -> None:
    async with world(sync_template, tmp_path) as w:
        seen_during_outage: list[int] = []

        async def record_last_mid(_seconds: float) -> None:
            # The engine waits between retries: look at the server then.
            async with w.runtime.db.read_session() as session:
                last = await session.scalar(
                    select(SyncClient.last_mid).where(SyncClient.client_id == wang.store.client_id)
                )
            seen_during_outage.append(last or 0)

        wang = w.handset("wang.lei", sleep=record_last_mid)
        await wang.engine.pull()
        batch_id = await lot_id(w, LOT_018)
        for n in range(10):
            await wang.enqueue("defect.report", defect_args(batch_id, f"defect {n}"))
        wang.transport.script(*[Fault.UNAVAILABLE] * 6, path="/api/v1/sync/push")
        await wang.engine.sync()

        assert seen_during_outage == [0] * 6
        rows = await applied(w, wang)
        assert [(r.mid, r.mutation_id, r.status) for r in rows] == [
            (mid, mutation_id, "applied") for mid, mutation_id in enumerate(wang.enqueued, start=1)
        ]
        async with w.runtime.db.read_session() as session:
            descriptions = (await session.scalars(select(Defect.description).order_by(col(Defect.created_at)))).all()
        assert sorted(descriptions) == sorted(f"defect {n}" for n in range(10))
        await assert_converged(w, wang)


async def test_a_token_that_expires_between_pages_is_refreshed_and_the_pull_completes(
    sync_template: Settings, tmp_path: Path
) -> None:
    async with world(sync_template, tmp_path) as w:
        qa = w.handset("qa.manager", pull_limit=20)
        qa.transport.script(
            Fault.NONE, Fault.NONE, Fault.UNAUTHORIZED, Fault.NONE, Fault.UNAUTHORIZED, path="/api/v1/sync/pull"
        )
        await qa.engine.pull()
        await assert_converged(w, qa)


async def test_a_second_user_on_the_device_leaves_the_first_users_outbox_alone(
    sync_template: Settings, tmp_path: Path
) -> None:
    async with world(sync_template, tmp_path) as w:
        wang = w.handset("wang.lei", store_name="tablet")
        await wang.engine.pull()
        batch_id = await lot_id(w, LOT_018)
        for n in range(3):
            await wang.enqueue("defect.report", defect_args(batch_id, f"offline {n}"))
        wang.store.close()

        jana = w.handset("jana.novak", store_name="tablet")
        with pytest.raises(ClientOwnedByOtherUser):
            await jana.engine.sync()
        assert jana.store.outbox_mids() == [1, 2, 3]
        jana.store.close()

        back = w.handset("wang.lei", store_name="tablet")
        await back.engine.sync()
        assert [r.status for r in await applied(w, back)] == ["applied"] * 3
        await assert_converged(w, back)


async def test_chat_from_three_offline_clients_arrives_once_in_one_order_everywhere(
    sync_template: Settings, tmp_path: Path
) -> None:
    async with world(sync_template, tmp_path) as w:
        wang = w.handset("wang.lei")
        await wang.enqueue("defect.report", defect_args(await lot_id(w, LOT_018), "thin coating"))
        await wang.engine.sync()
        async with w.runtime.db.read_session() as session:
            thread_id = (await session.scalars(select(Thread.id))).one()
        tablet_two, qa = w.handset("wang.lei"), w.handset("qa.manager", batch_size=7)
        clients = [wang, tablet_two, qa]
        for client in clients[1:]:
            await client.engine.pull()

        for label, client in enumerate(clients):
            for n in range(20):
                await client.enqueue(
                    "message.post", {"id": new_id(), "thread_id": thread_id, "body": f"client {label}: #{n}"}
                )
        # One of them resends a batch: the request arrives twice.
        qa.transport.script(Fault.NONE, Fault.DUPLICATE, path="/api/v1/sync/push")
        order = clients[:]
        random.Random(7).shuffle(order)
        for client in order:
            await client.engine.push()
        for client in clients:
            await client.engine.pull()

        async with w.runtime.db.read_session() as session:
            stored = list(
                await session.scalars(
                    select(Message).where(Message.thread_id == thread_id).order_by(col(Message.thread_seq))
                )
            )
        assert len(stored) == 60
        assert [m.thread_seq for m in stored] == list(range(1, 61))
        server_order = [m.id for m in stored]
        for label, client in enumerate(clients):
            local = sorted(
                (data["thread_seq"], data["id"])
                for (entity, _), (_, data) in client.store.snapshot().items()
                if entity == "message" and data is not None
            )
            assert [message_id for _, message_id in local] == server_order
            mine = [m.body for m in stored if m.body.startswith(f"client {label}:")]
            assert mine == [f"client {label}: #{n}" for n in range(20)]
            await assert_converged(w, client)
