"""Speaking the sync protocol over the test client: pushes, pulls, and the server's scoped state."""

from __future__ import annotations

import uuid
from itertools import count
from typing import Any

import jwt
from litestar.testing import AsyncTestClient
from sqlmodel import select

from loopline.core.access import Principal, ScopedEntity
from loopline.core.runtime import Runtime
from loopline.customer.projections import customer_user_ids, for_customer
from loopline.people.service import load_principal
from loopline_sync.protocol import Change

ReadModel = dict[tuple[str, str], tuple[int, dict[str, Any]]]


def new_id() -> str:
    return str(uuid.uuid4())


class Device:
    """A minimal protocol client: a client id, a mid counter, a cursor and a read model."""

    def __init__(self, client: AsyncTestClient[Any], headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers
        self.client_id = new_id()
        self.mids = count(1)
        self.cursor: str | None = None
        self.read_model: ReadModel = {}

    def mutation(self, name: str, args: dict[str, Any], mid: int | None = None) -> dict[str, Any]:
        return {"mid": mid if mid is not None else next(self.mids), "id": new_id(), "name": name, "args": args}

    async def push(self, mutations: list[dict[str, Any]], schema_version: int = 1) -> Any:
        return await self.client.post(
            "/api/v1/sync/push",
            headers=self.headers,
            json={"client_id": self.client_id, "schema_version": schema_version, "mutations": mutations},
        )

    async def push_ok(self, *mutations: dict[str, Any]) -> dict[str, Any]:
        response = await self.push(list(mutations))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def pull_page(self, limit: int = 500) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/sync/pull",
            headers=self.headers,
            json={"client_id": self.client_id, "schema_version": 1, "cursor": self.cursor, "limit": limit},
        )
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        if page["reset_required"]:
            self.read_model.clear()
        for change in page["changes"]:
            key = (change["entity"], change["id"])
            if change["op"] == "delete":
                self.read_model.pop(key, None)
            elif key not in self.read_model or self.read_model[key][0] <= change["version"]:
                self.read_model[key] = (change["version"], change["data"])
        self.cursor = page["cursor"]
        return page

    async def pull_all(self, limit: int = 500) -> None:
        while True:
            page = await self.pull_page(limit)
            if not page["has_more"]:
                return


def _tables(base: type[ScopedEntity] = ScopedEntity) -> list[type[ScopedEntity]]:
    found = []
    for cls in base.__subclasses__():
        if hasattr(cls, "__table__"):
            found.append(cls)
        found.extend(_tables(cls))
    return found


async def server_state(runtime: Runtime, principal: Principal) -> ReadModel:
    """The user's readable state, read from the domain tables (not from the change log); a
    customer's in their customer views."""
    state: ReadModel = {}
    async with runtime.db.read_session() as session:
        customer_users = frozenset(await session.scalars(customer_user_ids()))
        for model in _tables():
            for row in await session.scalars(select(model).where(model.read_filter(principal))):
                data = row.public_data()
                change = Change(seq=0, entity=model.__entity__, id=row.id, op="put", version=row.version, data=data)
                shown = change if principal.is_staff else for_customer(change, customer_users)
                if shown is not None and shown.op == "put":
                    state[(model.__entity__, row.id)] = (row.version, shown.data or {})
    return _newest_messages_only(state)


def _newest_messages_only(state: ReadModel, keep: int = 200) -> ReadModel:
    """A device holds the newest `keep` messages of each thread (per visibility); older ones load on demand."""
    by_thread: dict[tuple[str, str], list[tuple[int, tuple[str, str]]]] = {}
    for key, (_, data) in state.items():
        if key[0] == "message":
            by_thread.setdefault((data["thread_id"], data["visibility"]), []).append((data["thread_seq"], key))
    dropped = {key for messages in by_thread.values() for _, key in sorted(messages)[:-keep]}
    return {key: value for key, value in state.items() if key not in dropped}


async def principal_of_token(runtime: Runtime, token: str) -> Principal:
    """The principal the server resolves for an access token (its session must be alive)."""
    principal = await load_principal(runtime, jwt.decode(token, options={"verify_signature": False}))
    assert principal is not None
    return principal


LOT_018 = "CN-SZ-L2-2406-018"


async def batch_of_lot_018(client: AsyncTestClient[Any], headers: dict[str, str]) -> str:
    """The demo world's batch of lot 018 (Suzhou, line 2), where a defect may be reported."""
    batches = (await client.get("/api/v1/batches", headers=headers, params={"limit": 500})).json()["items"]
    batch_id: str = next(b["id"] for b in batches if b["lot_no"] == LOT_018)
    return batch_id


async def new_thread(client: AsyncTestClient[Any], reporter: Device, batch_id: str) -> str:
    """A fresh defect and its thread, so each test posts where nobody else does."""
    defect_id = new_id()
    await reporter.push_ok(
        reporter.mutation(
            "defect.report",
            {
                "id": defect_id,
                "batch_id": batch_id,
                "defect_code": "CC-THIN",
                "severity": "minor",
                "captured_at": "2024-06-17T08:12:00Z",
            },
        )
    )
    threads = await client.get(
        "/api/v1/threads", headers=reporter.headers, params={"subject_type": "defect", "subject_id": defect_id}
    )
    thread_id: str = threads.json()["items"][0]["thread"]["id"]
    return thread_id
