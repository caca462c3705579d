"""An advisory from draft to answers: approval by a supervisor, sending as first response, recipients answering."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import col, select

from loopline.core.events import DomainEvent
from loopline.core.runtime import Runtime
from loopline.customer.models import Advisory, AdvisoryRecipient, Case, Remedy
from loopline.quality.models import Batch
from tests.conftest import Login
from tests.loop_helpers import LATE_SHIFT_C1, LOT_018, demo_ids, inspection
from tests.sync_helpers import Device


@pytest.fixture(scope="module")
async def ids(world_runtime: Runtime) -> dict[str, str]:
    return await demo_ids(world_runtime)


def outcome(response: dict[str, Any]) -> tuple[str, str | None]:
    result = response["results"][-1]
    return result["status"], (result.get("error") or {}).get("code")


async def test_an_approved_advisory_sent_answers_every_case_and_recipients_answer_for_their_own_account(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> None:
    wang, qa = (
        Device(world_client, await world_login("wang.lei")),
        Device(world_client, await world_login("qa.manager")),
    )
    lena, gil = (
        Device(world_client, await world_login("lena.fischer")),
        Device(world_client, await world_login("gil.workshop")),
    )
    await wang.push_ok(wang.mutation("inspection.submit", inspection(ids, LOT_018, LATE_SHIFT_C1)))
    async with world_runtime.db.read_session() as session:
        advisory = (await session.scalars(select(Advisory))).one()
        recipients = list(await session.scalars(select(AdvisoryRecipient)))
    by_account = {ids[code]: code for code in ("A-001", "A-002", "A-003")}

    assert outcome(await lena.push_ok(lena.mutation("advisory.approve", {"id": advisory.id}))) == (
        "rejected",
        "forbidden",
    )
    assert outcome(await qa.push_ok(qa.mutation("advisory.send", {"id": advisory.id}))) == (
        "rejected",
        "advisory_not_approved",
    )
    assert outcome(await qa.push_ok(qa.mutation("advisory.approve", {"id": advisory.id}))) == ("applied", None)
    assert outcome(await qa.push_ok(qa.mutation("advisory.send", {"id": advisory.id}))) == ("applied", None)

    async with world_runtime.db.read_session() as session:
        sent = await session.get(Advisory, advisory.id)
        cases = list(await session.scalars(select(Case).where(Case.nc_id == advisory.nc_id)))
        lot = await session.get(Batch, ids[LOT_018])
        answered = list(await session.scalars(select(AdvisoryRecipient)))
        events = [e.type for e in await session.scalars(select(DomainEvent).order_by(col(DomainEvent.id)))]
    assert sent is not None
    assert (sent.status, sent.approved_by) == ("sent", ids["qa.manager"])
    assert lot is not None
    assert lot.status == "under_advisory"
    assert {r.state for r in answered} == {"sent"}
    assert all(r.sent_at is not None for r in answered)
    # Sending is the first response on all three cases, well inside even the VIP's two hours.
    assert len(cases) == 3
    for case in cases:
        assert case.first_response_at is not None
        assert case.advisory_id == advisory.id
        assert case.sla_first_response_due is not None
        assert case.first_response_at <= case.sla_first_response_due
    assert events[-2:] == ["advisory.approved", "advisory.sent"]

    iberia = next(r for r in recipients if by_account.get(r.account_id) == "A-003")
    stuttgart = next(r for r in recipients if by_account.get(r.account_id) == "A-001")
    # The workshop's portal user answers for Iberia, and cannot even see Stuttgart's copy.
    answer = gil.mutation("advisory.respond", {"recipient_id": iberia.id, "response": "acknowledge"})
    assert outcome(await gil.push_ok(answer)) == ("applied", None)
    assert outcome(await gil.push_ok(answer)) == ("duplicate", None)
    foreign = gil.mutation("advisory.respond", {"recipient_id": stuttgart.id, "response": "acknowledge"})
    assert outcome(await gil.push_ok(foreign)) == ("rejected", "not_found")
    # The account manager records Stuttgart's answers from a call.
    for response in ("acknowledge", "accept"):
        step = lena.mutation("advisory.respond", {"recipient_id": stuttgart.id, "response": response})
        assert outcome(await lena.push_ok(step)) == ("applied", None)
    late = lena.mutation("advisory.respond", {"recipient_id": stuttgart.id, "response": "decline"})
    assert outcome(await lena.push_ok(late)) == ("rejected", "invalid_response")
    async with world_runtime.db.read_session() as session:
        states = {r.id: r.state for r in await session.scalars(select(AdvisoryRecipient))}
        remedies = {
            by_account[r.account_id]: (r.kind, r.qty, str(r.amount), r.status)
            for r in await session.scalars(select(Remedy))
        }
    assert (states[iberia.id], states[stuttgart.id]) == ("acknowledged", "accepted")
    # Acknowledging grants the account's entitlement once (scenario step 4), A-002 has not answered yet.
    assert remedies == {
        "A-001": ("replace_all", 2000, "40800.00", "approved"),
        "A-003": ("credit_pct", 800, "1440.00", "approved"),
    }


async def test_a_customer_never_learns_which_other_customers_received_the_advisory(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> None:
    gil, qa = (
        Device(world_client, await world_login("gil.workshop")),
        Device(world_client, await world_login("qa.manager")),
    )
    for device in (gil, qa):
        await device.pull_all()
    async with world_runtime.db.read_session() as session:
        advisory = (await session.scalars(select(Advisory))).one()
    # On the device: the advisory without its list of accounts, for the workshop and QA alike.
    assert "account_ids" not in gil.read_model[("advisory", advisory.id)][1]
    assert "account_ids" not in qa.read_model[("advisory", advisory.id)][1]
    # Over REST: QA, in the advisory's plant, sees all three; the workshop sees no list of accounts at all.
    everyone = sorted(ids[c] for c in ("A-001", "A-002", "A-003"))
    response = await world_client.get(f"/api/v1/advisories/{advisory.id}", headers=qa.headers)
    assert sorted(response.json()["advisory"]["account_ids"]) == everyone
    listed = await world_client.get("/api/v1/advisories", headers=qa.headers)
    assert [sorted(a["account_ids"]) for a in listed.json()["items"]] == [everyone]
    for path in (f"/api/v1/advisories/{advisory.id}", "/api/v1/advisories"):
        response = await world_client.get(path, headers=gil.headers)
        assert response.status_code == 200
        assert "account_ids" not in response.text
