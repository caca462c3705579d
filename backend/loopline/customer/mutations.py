"""Sync mutations of customer service: case status commands, following a case, advisory approval,
sending and answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from loopline.core.access import Role
from loopline.core.events import emit
from loopline.customer import advisories
from loopline.customer.advisories import AdvisoryStepRefused
from loopline.customer.models import (
    CASE_TRANSITIONS,
    Advisory,
    AdvisoryRecipient,
    Case,
    CaseStatus,
    Remedy,
    RemedyStatus,
)
from loopline.loop.cases import resolve_case
from loopline.loop.remedies import book_external_failure, execute, mark_handled_by_person, on_acknowledgement
from loopline.people.models import User
from loopline.people.service import principal_of
from loopline.quality.mutations import StatusArgs
from loopline.syncing.registry import (
    Handler,
    MutationContext,
    MutationRejected,
    parse_args,
    readable,
    require,
    status_command,
)
from loopline.threads.models import SubjectType
from loopline.threads.service import join_thread


async def set_case_status(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(StatusArgs, raw)
    require(ctx.principal.role in CASE_STAFF)
    case = await readable(ctx, Case, args.id)
    if status_command(case.status, args.from_, args.to, CASE_TRANSITIONS):
        mark_handled_by_person(case)
        if args.to == CaseStatus.RESOLVED:
            await resolve_case(ctx.session, case, auto_handled=False, actor=ctx.principal.user_id, now=ctx.now)
        else:
            case.status = CaseStatus(args.to)
            await ctx.session.flush()
    return case.version


class CaseAssignArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=36)
    assignee_id: str = Field(max_length=36)


async def assign_case(ctx: MutationContext, raw: dict[str, Any]) -> int:
    """Hand a case to a service rep or supervisor who can see its account; they join its thread."""
    args = parse_args(CaseAssignArgs, raw)
    require(ctx.principal.role in CASE_STAFF)
    case = await readable(ctx, Case, args.id)
    if case.assignee_id == args.assignee_id:
        return case.version
    assignee = await ctx.session.get(User, args.assignee_id)
    if assignee is None or not assignee.is_active or Role(assignee.role) not in CASE_STAFF:
        raise MutationRejected("invalid_assignee", "Cases go to an active service rep, supervisor or admin.")
    scope = await principal_of(ctx.session, assignee, session_id="")
    sees_it = await ctx.session.scalar(select(col(Case.id)).where(Case.id == case.id, Case.read_filter(scope)))
    require(sees_it is not None, "invalid_assignee", "The assignee cannot see this account's cases.")
    mark_handled_by_person(case)
    case.assignee_id = assignee.id
    await ctx.session.flush()
    await join_thread(ctx.session, SubjectType.CASE, case.id, [(assignee.id, "assignee")])
    emit(
        ctx.session,
        "case.assigned",
        subject_type="case",
        subject_id=case.id,
        actor=ctx.principal.user_id,
        at=ctx.now,
        payload={"number": case.number, "assignee_id": assignee.id},
    )
    return case.version


class CaseFollowArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=36)


async def follow_case(ctx: MutationContext, raw: dict[str, Any]) -> None:
    """A customer portal user joins the thread of one of their account's cases.

    Customers read a thread only as its participant, and only the person who filed a case is
    one from the start; a colleague at the same account (or anyone, for a case the loop
    opened) takes part from the portal this way and then reads its customer-visible messages,
    never the internal ones. Staff are brought in by assignment and the loop rules instead.
    Following twice changes nothing."""
    args = parse_args(CaseFollowArgs, raw)
    require(ctx.principal.role is Role.CUSTOMER, "forbidden", "Customers follow their cases; staff are assigned.")
    case = await readable(ctx, Case, args.id)
    await join_thread(ctx.session, SubjectType.CASE, case.id, [(ctx.principal.user_id, "follower")])


class AdvisoryArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=36)


class AdvisoryResponseArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient_id: str = Field(max_length=36)
    response: Literal["acknowledge", "accept", "decline"]


def _refused(exc: AdvisoryStepRefused) -> MutationRejected:
    return MutationRejected(exc.code, exc.message, {"current": exc.current})


async def approve_advisory(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(AdvisoryArgs, raw)
    require(ctx.principal.role in APPROVERS, "forbidden", "Only a supervisor approves advisories.")
    advisory = await readable(ctx, Advisory, args.id)
    if advisories.approve(ctx.session, advisory, ctx.principal.user_id, ctx.now):
        await ctx.session.flush()
    return advisory.version


async def send_advisory(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(AdvisoryArgs, raw)
    require(ctx.principal.role in APPROVERS, "forbidden", "Only a supervisor sends advisories.")
    advisory = await readable(ctx, Advisory, args.id)
    try:
        await advisories.send(ctx.session, advisory, ctx.principal.user_id, ctx.now)
    except AdvisoryStepRefused as exc:
        raise _refused(exc) from exc
    return advisory.version


async def respond_to_advisory(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(AdvisoryResponseArgs, raw)
    require(ctx.principal.role in RESPONDERS, "forbidden", "Customers and service staff record answers.")
    recipient = await readable(ctx, AdvisoryRecipient, args.recipient_id)
    try:
        answered = advisories.respond(ctx.session, recipient, args.response, ctx.principal.user_id, ctx.now)
    except AdvisoryStepRefused as exc:
        raise _refused(exc) from exc
    if answered:
        await ctx.session.flush()
        if args.response == "acknowledge":
            await on_acknowledgement(ctx.session, recipient, actor=ctx.principal.user_id, now=ctx.now)
    return recipient.version


class RemedyDecisionArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=36)
    decision: Literal["approve", "reject"]


async def decide_remedy(ctx: MutationContext, raw: dict[str, Any]) -> int:
    """The named approver (or an admin) decides a remedy proposed above its rule's cap."""
    args = parse_args(RemedyDecisionArgs, raw)
    remedy = await readable(ctx, Remedy, args.id)
    approver = remedy.details.get("approver_id")
    require(
        ctx.principal.role is Role.ADMIN or (approver is not None and approver == ctx.principal.user_id),
        "forbidden",
        "Only the rule's named approver decides this remedy.",
    )
    decided = RemedyStatus.APPROVED if args.decision == "approve" else RemedyStatus.REJECTED
    if remedy.status == decided:
        return remedy.version
    if remedy.status != RemedyStatus.PROPOSED:
        raise MutationRejected("remedy_decided", "The remedy was decided already.", {"current": remedy.status})
    remedy.status = decided
    remedy.approved_by = ctx.principal.user_id if decided == RemedyStatus.APPROVED else None
    case = await ctx.session.get(Case, remedy.case_id)
    if case is not None:
        mark_handled_by_person(case)
        if decided == RemedyStatus.APPROVED:
            await book_external_failure(ctx.session, remedy, case, ctx.now)
    await ctx.session.flush()
    emit(
        ctx.session,
        f"remedy.{decided.value}",
        subject_type="remedy",
        subject_id=remedy.id,
        actor=ctx.principal.user_id,
        at=ctx.now,
        payload={"number": remedy.number, "amount": remedy.amount},
    )
    return remedy.version


class RemedyArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=36)


async def execute_remedy(ctx: MutationContext, raw: dict[str, Any]) -> int:
    """Fulfilment: the replacement shipped and was accepted, the credit note issued."""
    args = parse_args(RemedyArgs, raw)
    require(ctx.principal.role in CASE_STAFF)
    remedy = await readable(ctx, Remedy, args.id)
    if remedy.status == RemedyStatus.EXECUTED:
        return remedy.version
    if remedy.status != RemedyStatus.APPROVED:
        raise MutationRejected(
            "remedy_not_approved", "Only an approved remedy is carried out.", {"current": remedy.status}
        )
    await execute(ctx.session, remedy, actor=ctx.principal.user_id, now=ctx.now)
    return remedy.version


CASE_STAFF = {Role.SERVICE_REP, Role.SUPERVISOR, Role.ADMIN}
APPROVERS = {Role.SUPERVISOR, Role.ADMIN}
RESPONDERS = {Role.CUSTOMER, Role.SERVICE_REP, Role.SUPERVISOR, Role.ADMIN}

mutations: dict[str, Handler] = {
    "case.set_status": set_case_status,
    "case.assign": assign_case,
    "case.follow": follow_case,
    "advisory.approve": approve_advisory,
    "advisory.send": send_advisory,
    "advisory.respond": respond_to_advisory,
    "remedy.decide": decide_remedy,
    "remedy.execute": execute_remedy,
}
