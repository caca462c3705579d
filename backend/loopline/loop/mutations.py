"""Sync mutations of the loop: opening a customer complaint or inquiry (`case.open`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select

from loopline.catalog.models import ComplaintCategory
from loopline.core.access import Role
from loopline.core.types import MAX_INT
from loopline.customer.models import Account, Case, CaseOrigin, Contact
from loopline.loop.complaints import Complaint, open_complaint
from loopline.syncing.registry import (
    Handler,
    MutationContext,
    MutationRejected,
    check_same_content,
    parse_args,
    readable,
    require,
)

OPENERS = {Role.SERVICE_REP, Role.SUPERVISOR, Role.ADMIN, Role.CUSTOMER}


class CaseOpenArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=36)
    # Customers may leave it out when they belong to one account.
    account_id: str | None = Field(default=None, max_length=36)
    kind: Literal["complaint", "inquiry"] = "complaint"
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=8000)
    contact_id: str | None = Field(default=None, max_length=36)
    lot_no: str | None = Field(default=None, min_length=1, max_length=64)
    category_code: str | None = Field(default=None, max_length=32)
    qty_affected: int = Field(default=0, ge=0, le=MAX_INT)
    qty_failed: int = Field(default=0, ge=0, le=MAX_INT)


async def open_case_mutation(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(CaseOpenArgs, raw)
    require(ctx.principal.role in OPENERS)
    require(args.qty_failed <= max(args.qty_affected, args.qty_failed), "validation_error")
    account = await readable(ctx, Account, args.account_id or _own_account(ctx))
    existing = await ctx.session.get(Case, args.id)
    if existing is not None:
        await check_same_content(
            ctx, existing, {"account_id": account.id, "title": args.title, "description": args.description}
        )
        return existing.version
    if args.category_code is not None and (
        await ctx.session.scalar(select(ComplaintCategory.id).where(ComplaintCategory.code == args.category_code))
        is None
    ):
        raise MutationRejected("unknown_category", f"No complaint category {args.category_code!r}.")
    if args.contact_id is not None:
        contact = await ctx.session.get(Contact, args.contact_id)
        require(contact is not None and contact.account_id == account.id, "not_found", "No such contact here.")
    case = await open_complaint(
        ctx.session,
        Complaint(
            id=args.id,
            account=account,
            origin=CaseOrigin.INQUIRY if args.kind == "inquiry" else CaseOrigin.CUSTOMER,
            title=args.title,
            description=args.description,
            contact_id=args.contact_id,
            lot_no=args.lot_no,
            category_code=args.category_code,
            qty_affected=max(args.qty_affected, args.qty_failed),
            qty_failed=args.qty_failed,
        ),
        actor=ctx.principal.user_id,
        now=ctx.now,
    )
    return case.version


def _own_account(ctx: MutationContext) -> str | None:
    accounts = ctx.principal.account_ids or frozenset()
    return next(iter(accounts)) if len(accounts) == 1 else None


mutations: dict[str, Handler] = {"case.open": open_case_mutation}
