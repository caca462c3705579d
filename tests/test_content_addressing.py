"""A content hash grants nothing: no way of attaching a hash makes someone else's photo readable.

The ways are generated: every field of every mutation's args that takes a photo hash
(found in the mutation registry's schemas), and `attachment.link` on every entity type it
supports. A new way without a case below fails `test_every_way_to_attach_a_hash_has_a_case`.

For each way, three users meet one photo: its owner uploads it and attaches it to a
record of theirs; a reader of that record attaches it to a record of their own without
sending a byte; a stranger, who cannot read the owner's record, attaches it too. The
stranger's attachment stays pending exactly like one of a hash the server never saw, and
the bytes stay out of reach (HEAD 404, POST answers a fresh upload), until the stranger
sends the bytes themselves.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

import pytest
from litestar.testing import AsyncTestClient
from pydantic import BaseModel
from sqlmodel import col, select

from loopline.catalog.models import InspectionPlan, Severity
from loopline.core.runtime import Runtime
from loopline.customer.models import Account
from loopline.media.models import Attachment, Sha256Hex
from loopline.media.mutations import LINKABLE
from loopline.quality.models import Batch, Measurement, NcSource, NonConformance
from loopline.syncing.push import MUTATIONS
from loopline.syncing.registry import BatchHandler, Handler
from loopline.threads.models import Thread
from tests.blob_helpers import BLOBS, fetch, sha, start, upload
from tests.conftest import Headers, Login
from tests.photo_helpers import gps_exif, photo
from tests.sync_helpers import Device, new_id

# -- the ways, from the registry ---------------------------------------------------------

HASH_CONSTRAINT = get_args(Sha256Hex)[1]


def args_schema(handler: Handler | BatchHandler) -> type[BaseModel]:
    """The schema a handler parses its args with (every handler starts with `parse_args`)."""
    function = handler.apply if isinstance(handler, BatchHandler) else handler
    [name] = set(re.findall(r"parse_args\((\w+)", inspect.getsource(function)))
    schema: type[BaseModel] = vars(inspect.getmodule(function))[name]
    return schema


def hash_fields(schema: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Dotted paths of the fields that take a photo hash, however deeply nested."""
    for name, field in schema.model_fields.items():
        yield from _hash_fields(field.annotation, field.metadata, f"{prefix}{name}")


def _hash_fields(annotation: Any, metadata: list[Any], path: str) -> Iterator[str]:
    if HASH_CONSTRAINT in metadata:
        yield path
    elif get_origin(annotation) is Annotated:
        inner, *extra = get_args(annotation)
        yield from _hash_fields(inner, extra, path)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from hash_fields(annotation, f"{path}.")
    else:
        for argument in get_args(annotation):
            yield from _hash_fields(argument, [], path)


def ways_to_attach() -> list[str]:
    ways = []
    for name, handler in sorted(MUTATIONS.items()):
        for path in dict.fromkeys(hash_fields(args_schema(handler))):
            if name == "attachment.link":
                ways += [f"attachment.link:{entity}" for entity in sorted(LINKABLE)]
            else:
                ways.append(f"{name}:{path}")
    return ways


# -- the world ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    username: str
    # Where their records go: a lot of their plant, or an account they serve.
    lot: str | None = None
    account: str | None = None


@dataclass(frozen=True)
class Cast:
    owner: Actor
    reader: Actor
    stranger: Actor


# Wang inspects Suzhou; the QA manager supervises every line; Jana inspects Brno.
ON_THE_SHOP_FLOOR = Cast(
    owner=Actor("wang.lei", lot="CN-SZ-L2-2406-018"),
    reader=Actor("qa.manager", lot="CN-SZ-L1-2406-019"),
    stranger=Actor("jana.novak", lot="CZ-BR-L1-2406-044"),
)
# The workshop is a customer of A-003, which Lucía serves; Lena serves A-001.
AROUND_A_CASE = Cast(
    owner=Actor("gil.workshop", account="A-003"),
    reader=Actor("lucia.martin", account="A-003"),
    stranger=Actor("lena.fischer", account="A-001"),
)
CAST_OF = {"attachment.link:case": AROUND_A_CASE}


@dataclass
class Attached:
    status: str
    entity: str
    entity_id: str


class Scene:
    """Records made as devices make them, for whichever actor a way needs."""

    def __init__(self, client: AsyncTestClient[Any], runtime: Runtime, login: Login) -> None:
        self.client = client
        self.runtime = runtime
        self.login = login
        self.headers: dict[str, Headers] = {}

    async def as_(self, actor: Actor) -> Headers:
        if actor.username not in self.headers:
            self.headers[actor.username] = await self.login(actor.username)
        return self.headers[actor.username]

    async def push(self, actor: Actor, name: str, args: dict[str, Any]) -> str:
        device = Device(self.client, await self.as_(actor))
        body = await device.push_ok(device.mutation(name, args))
        [result] = body["results"]
        status: str = result["status"]
        assert status in ("applied", "rejected"), result
        return status

    async def batch(self, actor: Actor) -> Batch:
        async with self.runtime.db.read_session() as session:
            return (await session.scalars(select(Batch).where(Batch.lot_no == actor.lot))).one()

    async def defect(self, actor: Actor, hashes: list[str]) -> tuple[str, str]:
        defect_id = new_id()
        args = {
            "id": defect_id,
            "batch_id": (await self.batch(actor)).id,
            "defect_code": "CC-THIN",
            "severity": "minor",
            "captured_at": "2024-06-17T08:12:00Z",
            "photo_hashes": hashes,
        }
        return await self.push(actor, "defect.report", args), defect_id

    async def inspection(self, actor: Actor, hashes: list[str], measured: list[str]) -> tuple[str, str, str]:
        """An inspection in spec; its one measurement's id too."""
        batch = await self.batch(actor)
        async with self.runtime.db.read_session() as session:
            plan = (
                await session.scalars(
                    select(InspectionPlan.id).where(InspectionPlan.product_model_id == batch.product_model_id)
                )
            ).first()
        inspection_id = new_id()
        args = {
            "id": inspection_id,
            "batch_id": batch.id,
            "plan_id": plan,
            "kind": "audit",
            "captured_at": "2024-06-17T08:12:00Z",
            "measurements": [{"characteristic": "C1", "value": 50.0, "photo_hashes": measured}],
            "photo_hashes": hashes,
        }
        status = await self.push(actor, "inspection.submit", args)
        async with self.runtime.db.read_session() as session:
            measurement = (
                await session.scalars(select(Measurement.id).where(Measurement.inspection_id == inspection_id))
            ).one()
        return status, inspection_id, measurement

    async def message(self, actor: Actor, hashes: list[str]) -> tuple[str, str]:
        """A message in the thread of a new defect of the actor's."""
        _, defect_id = await self.defect(actor, [])
        async with self.runtime.db.read_session() as session:
            thread = (await session.scalars(select(Thread.id).where(Thread.subject_id == defect_id))).one()
        message_id = new_id()
        args = {"id": message_id, "thread_id": thread, "body": "see the photo", "photo_hashes": hashes}
        return await self.push(actor, "message.post", args), message_id

    async def nonconformance(self, actor: Actor) -> str:
        """No mutation opens one (the loop rules do): arranged directly."""
        batch = await self.batch(actor)
        nc = NonConformance(
            plant_id=batch.plant_id,
            number=f"NC-T{uuid.uuid4().hex[:8]}",
            source=NcSource.DEFECT,
            source_ref=batch.lot_no,
            batch_ids=[batch.id],
            defect_code="CC-THIN",
            severity=Severity.MAJOR,
        )
        async with self.runtime.unit_of_work(actor="test", command="test.arrange") as session:
            session.add(nc)
        return nc.id

    async def case(self, actor: Actor) -> str:
        async with self.runtime.db.read_session() as session:
            account = (await session.scalars(select(Account.id).where(Account.code == actor.account))).one()
        case_id = new_id()
        args = {"id": case_id, "account_id": account, "title": "Flicker after rain", "qty_affected": 3}
        assert await self.push(actor, "case.open", args) == "applied"
        return case_id

    async def record(self, actor: Actor, entity: str) -> str:
        """A record of this type that the actor may read, without photos."""
        if entity == "defect":
            return (await self.defect(actor, []))[1]
        if entity in ("inspection", "measurement"):
            _, inspection_id, measurement_id = await self.inspection(actor, [], [])
            return inspection_id if entity == "inspection" else measurement_id
        if entity == "message":
            return (await self.message(actor, []))[1]
        if entity == "nonconformance":
            return await self.nonconformance(actor)
        assert entity == "case", f"no record of type {entity!r} is arranged here: add it"
        return await self.case(actor)

    async def link(self, actor: Actor, entity: str, digest: str) -> Attached:
        entity_id = await self.record(actor, entity)
        args = {"entity": entity, "entity_id": entity_id, "sha256": digest}
        return Attached(await self.push(actor, "attachment.link", args), entity, entity_id)


async def _defect_photo(scene: Scene, actor: Actor, digest: str) -> Attached:
    status, defect_id = await scene.defect(actor, [digest])
    return Attached(status, "defect", defect_id)


async def _inspection_photo(scene: Scene, actor: Actor, digest: str) -> Attached:
    status, inspection_id, _ = await scene.inspection(actor, [digest], [])
    return Attached(status, "inspection", inspection_id)


async def _measurement_photo(scene: Scene, actor: Actor, digest: str) -> Attached:
    status, _, measurement_id = await scene.inspection(actor, [], [digest])
    return Attached(status, "measurement", measurement_id)


async def _message_photo(scene: Scene, actor: Actor, digest: str) -> Attached:
    status, message_id = await scene.message(actor, [digest])
    return Attached(status, "message", message_id)


Attach = Callable[[Scene, Actor, str], Awaitable[Attached]]


def _link_to(entity: str) -> Attach:
    async def attach(scene: Scene, actor: Actor, digest: str) -> Attached:
        return await scene.link(actor, entity, digest)

    return attach


ATTACH: dict[str, Attach] = {
    "defect.report:photo_hashes": _defect_photo,
    "inspection.submit:photo_hashes": _inspection_photo,
    "inspection.submit:measurements.photo_hashes": _measurement_photo,
    "message.post:photo_hashes": _message_photo,
    **{f"attachment.link:{entity}": _link_to(entity) for entity in LINKABLE},
}


async def attachment_state(runtime: Runtime, attached: Attached, digest: str) -> str:
    async with runtime.db.read_session() as session:
        attachment = (
            await session.scalars(
                select(Attachment).where(
                    col(Attachment.entity_type) == attached.entity,
                    col(Attachment.entity_id) == attached.entity_id,
                    col(Attachment.sha256) == digest,
                )
            )
        ).one()
    return attachment.state.value


def outward(response: Any) -> tuple[int, str | None]:
    """What a response tells: its status and error code (never the hash it was about)."""
    code = response.json()["error"]["code"] if response.status_code >= 400 and response.content else None
    return response.status_code, code


@pytest.fixture(scope="module")
def scene(world_client: AsyncTestClient[Any], world_runtime: Runtime, world_login: Login) -> Scene:
    return Scene(world_client, world_runtime, world_login)


def test_every_way_to_attach_a_hash_has_a_case() -> None:
    assert set(ways_to_attach()) == set(ATTACH)


@pytest.mark.parametrize("way", ways_to_attach())
async def test_a_hash_makes_no_photo_readable_to_whoever_cannot_see_it(scene: Scene, way: str) -> None:
    cast, attach = CAST_OF.get(way, ON_THE_SHOP_FLOOR), ATTACH[way]
    seed = 1000 + sorted(ATTACH).index(way)
    data, never_sent = photo(seed, exif=gps_exif()), photo(seed + 500)
    client, runtime = scene.client, scene.runtime
    owner, reader, stranger = [await scene.as_(actor) for actor in (cast.owner, cast.reader, cast.stranger)]

    assert (await upload(client, owner, data)).headers["blob-state"] == "complete"
    owned = await attach(scene, cast.owner, sha(data))
    assert (owned.status, await attachment_state(runtime, owned, sha(data))) == ("applied", "available")

    # A reader of the owner's record may use the photo without sending a byte of it.
    assert (await fetch(client, reader, sha(data), "thumb")).status_code == 200
    shared = await attach(scene, cast.reader, sha(data))
    assert (shared.status, await attachment_state(runtime, shared, sha(data))) == ("applied", "available")
    assert (await start(client, reader, data)).status_code == 200

    # The stranger knows the hash: it gets them exactly what a hash nobody ever sent gets them.
    for digest in (sha(data), sha(never_sent)):
        head = await client.head(f"{BLOBS}/{digest}", headers=stranger)
        assert head.status_code == 404, way
    guessed = await attach(scene, cast.stranger, sha(data))
    unknown = await attach(scene, cast.stranger, sha(never_sent))
    assert (guessed.status, await attachment_state(runtime, guessed, sha(data))) == (
        unknown.status,
        await attachment_state(runtime, unknown, sha(never_sent)),
    )
    assert await attachment_state(runtime, guessed, sha(data)) == "pending"
    for size in ("thumb", "original"):
        answers = [outward(await fetch(client, stranger, d, size)) for d in (sha(data), sha(never_sent))]
        assert answers[0] == answers[1], way
        assert answers[0][0] != 200
    assert (await client.head(f"{BLOBS}/{sha(data)}", headers=stranger)).status_code == 404
    announced = [(await start(client, stranger, d)).json() for d in (data, never_sent)]
    assert [(a["state"], a["offset"]) for a in announced] == [("partial", 0), ("partial", 0)]

    # Sending the bytes proves the stranger holds the photo: their own record shows it now.
    assert (await upload(client, stranger, data)).headers["blob-state"] == "complete"
    assert await attachment_state(runtime, guessed, sha(data)) == "available"
    assert (await fetch(client, stranger, sha(data), "thumb")).status_code == 200
