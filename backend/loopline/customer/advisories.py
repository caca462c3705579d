"""Advisories after the draft: a supervisor approves, sending is recorded per recipient, recipients answer.

Sending is the first response on every open case the advisory speaks to (the cases of its
nonconformance at its recipient accounts), so an advisory sent within the SLA meets it for
all of them at once; the advisory's lots go `under_advisory`. A recipient — the customer
through the portal, or a service rep recording a call — acknowledges, accepts or
declines; each step is an event (`advisory.approved`, `advisory.sent`,
`advisory.acknowledged`, …) for webhooks and notifications.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.events import emit
from loopline.customer.models import (
    Advisory,
    AdvisoryRecipient,
    AdvisoryStatus,
    Case,
    CaseStatus,
    RecipientState,
)
from loopline.quality.models import Batch, BatchStatus

OPEN_CASE = [CaseStatus.NEW, CaseStatus.TRIAGED, CaseStatus.IN_PROGRESS, CaseStatus.AWAITING_CUSTOMER]
RESPONSES = {
    "acknowledge": RecipientState.ACKNOWLEDGED,
    "accept": RecipientState.ACCEPTED,
    "decline": RecipientState.DECLINED,
}
# A recipient may move forward from where they are: acknowledging first, then accepting or declining.
ANSWERABLE = {
    RecipientState.SENT: {RecipientState.ACKNOWLEDGED, RecipientState.ACCEPTED, RecipientState.DECLINED},
    RecipientState.ACKNOWLEDGED: {RecipientState.ACCEPTED, RecipientState.DECLINED},
}


class AdvisoryStepRefused(Exception):
    def __init__(self, code: str, message: str, current: str) -> None:
        super().__init__(message)
        self.code, self.message, self.current = code, message, current


def approve(session: AsyncSession, advisory: Advisory, approver: str, now: datetime) -> bool:
    """Approve a draft; False when it was approved (or further) already."""
    if advisory.status != AdvisoryStatus.DRAFT:
        return False
    advisory.status = AdvisoryStatus.APPROVED
    advisory.approved_by = approver
    emit(session, "advisory.approved", subject_type="advisory", subject_id=advisory.id, actor=approver, at=now)
    return True


async def send(session: AsyncSession, advisory: Advisory, sender: str, now: datetime) -> list[Case]:
    """Send an approved advisory: recipients `sent`, lots `under_advisory`, first response on the open cases."""
    if advisory.status == AdvisoryStatus.SENT:
        return []
    if advisory.status != AdvisoryStatus.APPROVED:
        raise AdvisoryStepRefused("advisory_not_approved", "Only an approved advisory can be sent.", advisory.status)
    advisory.status = AdvisoryStatus.SENT
    recipients = list(
        await session.scalars(select(AdvisoryRecipient).where(AdvisoryRecipient.advisory_id == advisory.id))
    )
    for recipient in recipients:
        recipient.state = RecipientState.SENT
        recipient.sent_at = now
    for batch in await session.scalars(select(Batch).where(col(Batch.id).in_(advisory.batch_ids))):
        if batch.status != BatchStatus.RECALLED:
            batch.status = BatchStatus.UNDER_ADVISORY
    answered = list(
        await session.scalars(
            select(Case).where(
                Case.nc_id == advisory.nc_id,
                col(Case.account_id).in_(advisory.account_ids),
                col(Case.status).in_(OPEN_CASE),
                col(Case.first_response_at).is_(None),
            )
        )
    )
    for case in answered:
        case.first_response_at = now
        case.advisory_id = advisory.id
    await session.flush()
    emit(
        session,
        "advisory.sent",
        subject_type="advisory",
        subject_id=advisory.id,
        actor=sender,
        at=now,
        payload={"recipients": len(recipients), "first_responses": [c.number for c in answered]},
    )
    return answered


def respond(session: AsyncSession, recipient: AdvisoryRecipient, response: str, actor: str, now: datetime) -> bool:
    """Record a recipient's answer; False when it is already recorded (a resend)."""
    state = RESPONSES[response]
    if recipient.state == state:
        return False
    if state not in ANSWERABLE.get(recipient.state, set()):
        raise AdvisoryStepRefused(
            "invalid_response", f"A recipient who is {recipient.state!r} cannot {response}.", recipient.state
        )
    recipient.state = state
    recipient.responded_at = now
    emit(
        session,
        f"advisory.{state.value}",
        subject_type="advisory",
        subject_id=recipient.advisory_id,
        actor=actor,
        at=now,
        payload={"recipient_id": recipient.id, "account_id": recipient.account_id, "contact_id": recipient.contact_id},
    )
    return True
