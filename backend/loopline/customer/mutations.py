"""Sync mutations of customer service: case status commands."""

from __future__ import annotations

from typing import Any

from loopline.core.access import Role
from loopline.customer.models import CASE_TRANSITIONS, Case, CaseStatus
from loopline.quality.mutations import StatusArgs
from loopline.syncing.registry import Handler, MutationContext, parse_args, readable, require, status_command


async def set_case_status(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(StatusArgs, raw)
    require(ctx.principal.role in {Role.SERVICE_REP, Role.SUPERVISOR, Role.ADMIN})
    case = await readable(ctx, Case, args.id)
    if status_command(case.status, args.from_, args.to, CASE_TRANSITIONS):
        case.status = CaseStatus(args.to)
        if case.status is CaseStatus.RESOLVED:
            case.resolved_at = ctx.now
        await ctx.session.flush()
    return case.version


mutations: dict[str, Handler] = {"case.set_status": set_case_status}
