"""GDPR erasure of a contact and the audit chain as evidence, over the HTTP API and the real database."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import col, select

from loopline.core.audit import GENESIS_HASH, WITHHELD, AuditEvent, commitment, verify_chain
from loopline.core.changelog import ChangeLog
from loopline.core.db import Database
from loopline.core.events import DomainEvent
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.core.uow import CommittedChange
from loopline.customer.models import Advisory, AdvisoryRecipient, Contact
from loopline.people.models import User
from loopline.realtime.tail import LogTail
from tests.conftest import Headers, Login
from tests.loop_helpers import LATE_SHIFT_C1, LOT_018, demo_ids, inspection
from tests.personal_data import copies_of
from tests.support import DEMO_PASSWORD, cli
from tests.sync_helpers import Device

API = "/api/v1/compliance"
REASON = "Art. 17 request, ticket DSR-2024-031"


def erasure_path(contact_id: str) -> str:
    return f"{API}/contacts/{contact_id}/erasure"


@pytest.fixture(scope="module")
async def ids(world_runtime: Runtime) -> dict[str, str]:
    return await demo_ids(world_runtime)


async def contact_named(runtime: Runtime, name: str) -> Contact:
    async with runtime.db.read_session() as session:
        return (await session.scalars(select(Contact).where(Contact.name == name))).one()


async def reload(runtime: Runtime, model: type[Any], entity_id: str) -> Any:
    async with runtime.db.read_session() as session:
        return await session.get(model, entity_id)


async def audit_events(runtime: Runtime, entity_id: str) -> list[AuditEvent]:
    async with runtime.db.read_session() as session:
        query = select(AuditEvent).where(AuditEvent.entity_id == entity_id).order_by(col(AuditEvent.seq))
        return list(await session.scalars(query))


def error_code(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def new_user(client: AsyncTestClient[Any], admin: Headers, username: str, role: str, **member: str) -> None:
    memberships = [{"kind": kind, "ref": ref} for kind, ref in member.items()]
    body = {"username": username, "password": DEMO_PASSWORD, "display_name": username, "role": role}
    response = await client.post("/api/v1/admin/users", headers=admin, json={**body, "memberships": memberships})
    assert response.status_code == 201, response.text


@dataclass
class WorkshopErasure:
    """The workshop contact (and its portal login) before the erasure, and the erasure's answer."""

    contact_id: str
    user_id: str
    personal: list[str]  # its name, e-mail and phone
    salt: str
    copies_before: list[tuple[str, str, str]]
    login_before: Headers
    response: dict[str, Any]


@pytest.fixture(scope="module")
async def workshop_erasure(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> WorkshopErasure:
    workshop = await contact_named(world_runtime, "Taller Hermanos Gil")
    assert workshop.email is not None
    assert workshop.phone is not None
    assert workshop.personal_salt is not None
    personal = [workshop.name, workshop.email, workshop.phone]
    copies_before = await copies_of(world_runtime, personal)
    login_before = await world_login("gil.workshop")
    response = await world_client.post(
        erasure_path(workshop.id), headers=await world_login("admin"), json={"reason": REASON}
    )
    assert response.status_code == 200, response.text
    return WorkshopErasure(
        workshop.id, ids["gil.workshop"], personal, workshop.personal_salt, copies_before, login_before, response.json()
    )


async def test_only_administrators_and_supervisors_of_the_account_may_erase(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> None:
    admin = await world_login("admin")
    await new_user(world_client, admin, "iberia.buyer", "customer", account=ids["A-003"])
    await new_user(world_client, admin, "na.supervisor", "supervisor", region="NA")
    carmen = await contact_named(world_runtime, "Carmen Ortega")
    body = {"reason": REASON}

    for username in ("lucia.martin", "iberia.buyer", "wang.lei"):
        refused = await world_client.post(erasure_path(carmen.id), headers=await world_login(username), json=body)
        assert error_code(refused) == (403, "forbidden"), username
    # A supervisor of another region cannot read the contact: the same answer as for no contact at all.
    elsewhere = await world_client.post(erasure_path(carmen.id), headers=await world_login("na.supervisor"), json=body)
    assert error_code(elsewhere) == (404, "not_found")
    assert error_code(await world_client.post(erasure_path(carmen.id), json=body)) == (401, "not_authenticated")

    unchanged = await reload(world_runtime, Contact, carmen.id)
    assert (unchanged.name, unchanged.pseudonymized_at, unchanged.version) == ("Carmen Ortega", None, carmen.version)
    assert [e.action for e in await audit_events(world_runtime, carmen.id)] == ["contact.insert"]

    # The chain's report names no record; its export spans every plant and account.
    rep, supervisor = await world_login("lucia.martin"), await world_login("na.supervisor")
    assert error_code(await world_client.get(f"{API}/audit/verify", headers=rep)) == (403, "forbidden")
    assert (await world_client.get(f"{API}/audit/verify", headers=supervisor)).status_code == 200
    assert error_code(await world_client.get(f"{API}/audit/export", headers=supervisor)) == (403, "forbidden")


async def test_an_unknown_contact_or_a_missing_reason_is_refused_with_a_stable_code(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:
    admin = await world_login("admin")
    unknown = await world_client.post(erasure_path("0190a1b2-0000-7000-8000-000000000000"), headers=admin, json={})
    assert error_code(unknown) == (400, "validation_error")
    unknown = await world_client.post(
        erasure_path("0190a1b2-0000-7000-8000-000000000000"), headers=admin, json={"reason": REASON}
    )
    assert error_code(unknown) == (404, "not_found")
    katrin = await contact_named(world_runtime, "Katrin Vogel")
    blank = await world_client.post(erasure_path(katrin.id), headers=admin, json={"reason": "   "})
    assert error_code(blank) == (400, "validation_error")
    assert (await reload(world_runtime, Contact, katrin.id)).pseudonymized_at is None


async def test_erasure_pseudonymizes_the_contact_closes_its_portal_login_and_is_audited(
    world_client: AsyncTestClient[Any], world_runtime: Runtime, ids: dict[str, str], workshop_erasure: WorkshopErasure
) -> None:
    answer = workshop_erasure.response
    contact = answer["contact"]
    assert contact["id"] == workshop_erasure.contact_id
    assert contact["name"] == f"Erased contact {workshop_erasure.contact_id[-8:]}"
    assert (contact["email"], contact["phone"]) == (None, None)
    assert contact["pseudonymized_at"] is not None
    assert contact["consents"]["service_notices"] is False
    assert "personal_salt" not in contact
    assert answer["portal_user_ids"] == [workshop_erasure.user_id]

    stored = await reload(world_runtime, Contact, workshop_erasure.contact_id)
    assert (stored.name, stored.email, stored.phone, stored.personal_salt) == (contact["name"], None, None, None)
    login = await reload(world_runtime, User, workshop_erasure.user_id)
    assert (login.username, login.email, login.is_active) == (f"erased-{login.id}", None, False)
    # Its open session ends at once, and it can no longer sign in.
    me = await world_client.get("/api/v1/me", headers=workshop_erasure.login_before)
    assert error_code(me) == (401, "session_ended")
    signing_in = await world_client.post(
        "/api/v1/auth/login", json={"username": "gil.workshop", "password": DEMO_PASSWORD}
    )
    assert error_code(signing_in) == (401, "invalid_credentials")

    *_, update, erased = await audit_events(world_runtime, workshop_erasure.contact_id)
    assert (update.action, erased.action, erased.actor) == ("contact.update", "contact.erased", ids["admin"])
    assert erased.diff is not None
    assert erased.diff["requested_by"] == ids["admin"]
    assert erased.diff["reason"] == REASON
    assert erased.diff["portal_user_ids"] == [workshop_erasure.user_id]
    # The old values are not on the chain, and with the salt gone not even their commitments can be checked.
    assert update.diff is not None
    assert update.diff["name"] == [WITHHELD, WITHHELD]
    assert update.diff["email"] == [WITHHELD, None]
    async with world_runtime.db.read_session() as session:
        events = list(await session.scalars(select(DomainEvent).where(DomainEvent.type == "contact.erased")))
    assert [(e.subject_id, e.payload) for e in events] == [(workshop_erasure.contact_id, {"account_id": ids["A-003"]})]


async def test_the_personal_data_is_gone_from_every_table_and_the_chain_still_verifies(
    world_runtime: Runtime, workshop_erasure: WorkshopErasure
) -> None:
    # Before: the contact, its portal login and their change-log rows held it.
    assert {(table, value) for table, _column, value in workshop_erasure.copies_before} >= {
        ("contact", value) for value in workshop_erasure.personal
    } | {("change_log", value) for value in workshop_erasure.personal} | {
        ("user", workshop_erasure.personal[0]),
        ("user", workshop_erasure.personal[1]),
    }
    assert await copies_of(world_runtime, workshop_erasure.personal) == []

    # The chain held commitments keyed with the row's salt from the start, never the values.
    inserted = (await audit_events(world_runtime, workshop_erasure.contact_id))[0]
    assert inserted.action == "contact.insert"
    assert inserted.diff is not None
    name, email, phone = workshop_erasure.personal
    assert inserted.diff["name"] == commitment(workshop_erasure.salt, "name", name)
    assert inserted.diff["email"] == commitment(workshop_erasure.salt, "email", email)
    assert inserted.diff["phone"] == commitment(workshop_erasure.salt, "phone", phone)
    assert str(inserted.diff["name"]).startswith("hmac-sha256:")

    async with world_runtime.db.read_session() as session:
        report = await verify_chain(session)
        logged = list(
            await session.scalars(select(ChangeLog).where(ChangeLog.entity_id == workshop_erasure.contact_id))
        )
    assert report.ok, report
    assert logged
    assert {row.data["name"] for row in logged if row.data} == {workshop_erasure.response["contact"]["name"]}


async def test_a_changed_personal_field_is_recorded_as_two_commitments(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:
    haruka = await contact_named(world_runtime, "Haruka Tanaka")
    response = await world_client.patch(
        f"/api/v1/admin/contacts/{haruka.id}", headers=await world_login("admin"), json={"phone": "+81 3 5555 0199"}
    )
    assert response.status_code == 200, response.text
    assert "personal_salt" not in response.json()
    *_, changed = await audit_events(world_runtime, haruka.id)
    assert changed.diff == {
        "phone": [
            commitment(haruka.personal_salt, "phone", haruka.phone),
            commitment(haruka.personal_salt, "phone", "+81 3 5555 0199"),
        ]
    }


async def test_a_second_erasure_is_refused_and_changes_nothing(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, workshop_erasure: WorkshopErasure
) -> None:
    before = await reload(world_runtime, Contact, workshop_erasure.contact_id)
    again = await world_client.post(
        erasure_path(workshop_erasure.contact_id), headers=await world_login("qa.manager"), json={"reason": REASON}
    )
    assert error_code(again) == (409, "contact_already_erased")
    assert (
        again.json()["error"]["details"]["pseudonymized_at"] == workshop_erasure.response["contact"]["pseudonymized_at"]
    )
    after = await reload(world_runtime, Contact, workshop_erasure.contact_id)
    assert after.version == before.version
    actions = [e.action for e in await audit_events(world_runtime, workshop_erasure.contact_id)]
    assert actions.count("contact.erased") == 1


async def test_a_device_synced_before_the_erasure_ends_with_the_pseudonymized_contact(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:
    thomas = await contact_named(world_runtime, "Thomas Brandt")
    assert thomas.email is not None
    assert thomas.phone is not None
    personal = [thomas.name, thomas.email, thomas.phone]
    lena = await world_login("lena.fischer")
    device = Device(world_client, lena)
    await device.pull_all()
    assert device.read_model[("contact", thomas.id)][1]["name"] == "Thomas Brandt"

    response = await world_client.post(
        erasure_path(thomas.id), headers=await world_login("admin"), json={"reason": REASON}
    )
    assert response.status_code == 200, response.text
    await device.pull_all()
    version, data = device.read_model[("contact", thomas.id)]
    assert version == response.json()["contact"]["version"]
    assert (data["name"], data["email"], data["phone"]) == (f"Erased contact {thomas.id[-8:]}", None, None)
    assert "personal_salt" not in data
    # A device that syncs from scratch now never sees the old values either.
    fresh = Device(world_client, lena)
    await fresh.pull_all()
    for model in (device.read_model, fresh.read_model):
        synced = json.dumps(model.get(("contact", thomas.id)), ensure_ascii=False)
        assert not [value for value in personal if value in synced]
    assert fresh.read_model[("contact", thomas.id)] == (version, data)


async def test_advisories_skip_erased_contacts_and_unsent_notices_to_them_are_withdrawn(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> None:
    admin = await world_login("admin")
    sarah, mike = (
        await contact_named(world_runtime, "Sarah Kowalski"),
        await contact_named(world_runtime, "Mike Donnelly"),
    )
    carmen = await contact_named(world_runtime, "Carmen Ortega")
    erased = await world_client.post(erasure_path(sarah.id), headers=admin, json={"reason": REASON})
    assert erased.status_code == 200, erased.text
    assert (await reload(world_runtime, Contact, sarah.id)).consents["service_notices"] is False

    # Lot 018 goes out of spec: the advisory is drafted for the accounts' consented contacts.
    wang = Device(world_client, await world_login("wang.lei"))
    await wang.push_ok(wang.mutation("inspection.submit", inspection(ids, LOT_018, LATE_SHIFT_C1)))
    async with world_runtime.db.read_session() as session:
        advisory = (await session.scalars(select(Advisory))).one()
        drafted = {r.contact_id for r in await session.scalars(select(AdvisoryRecipient))}
    assert sarah.id not in drafted
    assert {mike.id, carmen.id} <= drafted

    # Erased before the advisory goes out: the notice to Carmen is withdrawn with her consent.
    withdrawn = await world_client.post(erasure_path(carmen.id), headers=admin, json={"reason": REASON})
    assert withdrawn.status_code == 200, withdrawn.text
    async with world_runtime.db.read_session() as session:
        remaining = {
            r.contact_id
            for r in await session.scalars(
                select(AdvisoryRecipient).where(AdvisoryRecipient.advisory_id == advisory.id)
            )
        }
    assert remaining == drafted - {carmen.id}
    *_, erased_event = await audit_events(world_runtime, carmen.id)
    assert erased_event.diff is not None
    assert len(erased_event.diff["advisory_recipient_ids"]) == 1


def verified_lines(lines: list[bytes], prev_hash: str = GENESIS_HASH) -> str:
    """Recompute the chain from exported lines alone, as an auditor would; the head hash."""
    for line in lines:
        event = json.loads(line)
        sealed = {name: value for name, value in event.items() if name not in ("prev_hash", "hash")}
        canonical = json.dumps(sealed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert event["prev_hash"] == prev_hash, event["seq"]
        assert hashlib.sha256(prev_hash.encode() + canonical).hexdigest() == event["hash"], event["seq"]
        prev_hash = event["hash"]
    return prev_hash


async def test_the_export_verifies_from_its_own_lines_and_agrees_with_the_verify_report(
    world_client: AsyncTestClient[Any], world_login: Login, workshop_erasure: WorkshopErasure
) -> None:
    admin = await world_login("admin")
    report = (await world_client.get(f"{API}/audit/verify", headers=admin)).json()
    assert report["ok"] is True
    response = await world_client.get(f"{API}/audit/export", headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = response.content.splitlines()
    head_seq, head_hash = int(response.headers["loopline-audit-head-seq"]), response.headers["loopline-audit-head-hash"]
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, head_seq + 1))
    assert verified_lines(lines) == head_hash
    # The report was made before the export; the export reaches at least as far.
    assert head_seq >= report["events"]
    assert json.loads(lines[report["events"] - 1])["hash"] == report["head_hash"]
    assert not [value for value in workshop_erasure.personal if value.encode() in response.content]

    # An export continues where an earlier one ended, linked by the hash.
    later = await world_client.get(f"{API}/audit/export", headers=admin, params={"after_seq": head_seq - 5})
    assert later.content.splitlines() == lines[-5:]
    assert verified_lines(later.content.splitlines(), json.loads(lines[-6])["hash"]) == head_hash

    # Any edit of an exported event shows.
    tampered = json.loads(lines[3])
    tampered["actor"] = "someone-else"
    with pytest.raises(AssertionError):
        verified_lines([*lines[:3], json.dumps(tampered).encode(), *lines[4:]])


async def test_the_command_line_export_writes_the_same_lines(
    world_client: AsyncTestClient[Any], world_login: Login, world_settings: Settings, tmp_path: Path
) -> None:
    exported = cli(world_settings, "audit", "export", "--output", str(tmp_path / "chain.jsonl"))
    lines = (tmp_path / "chain.jsonl").read_bytes().splitlines()
    head = verified_lines(lines)
    assert f"exported {len(lines)} events; chain head {head}" in exported.stderr
    over_http = await world_client.get(f"{API}/audit/export", headers=await world_login("admin"))
    assert over_http.content.splitlines()[: len(lines)] == lines


def test_the_live_tail_keeps_no_erased_data_of_a_contact(tmp_path: Path) -> None:
    """Sockets that resume from memory get the contact's older rows with the erased data, as the log has them."""
    tail = LogTail(Database.open(Settings.from_env(env={}, data_dir=tmp_path)), capacity=10)
    person = {"id": "c1", "name": "Gil Workshop", "email": "gil@workshop.example"}
    erased = {"id": "c1", "name": "Erased contact 00000001", "email": None}
    tail.extend(
        [
            CommittedChange(1, "account:a", "contact", "c1", "put", 1, person),
            CommittedChange(2, "account:a", "contact", "c1", "put", 2, {**person, "phone": "+49 1"}),
            CommittedChange(3, "account:a", "contact", "c2", "put", 1, {"id": "c2", "name": "Other Person"}),
        ]
    )
    tail.extend([CommittedChange(4, "account:a", "contact", "c1", "put", 3, erased)])
    sent = [json.loads(row.change) for row in tail.after(0) or []]
    assert [(c["seq"], c["version"]) for c in sent] == [(1, 1), (2, 2), (3, 1), (4, 3)]
    assert [c["data"]["name"] for c in sent] == [erased["name"], erased["name"], "Other Person", erased["name"]]
