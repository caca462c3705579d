"""Entitlements (loop rule 4): which remedy a case is owed, how much it costs, and who must approve it.

Pure decisions, no database: the callers gather the facts (the account's tier, the case's
severity and defect code, whether an advisory covers it, quantities and the unit cost)
and store what this returns.

Rules are tried in priority order and the first that matches decides. A rule leaves a
condition open with None. The remedy's terms come from the rule (`terms`):

- `replace_all`: every affected unit, plus `freight_per_unit` when air freight is owed;
- `replace_failed`: the units with a confirmed failure;
- `credit_pct`: `credit_pct` % of the unit cost on the affected units not replaced, and
  with `replace_failed`, the failed units replaced;

The credit and the replacement of all affected units are owed once per account and
advisory: a later complaint about units already being replaced, or already credited, is
not paid twice.
- `investigate`: no amount; a person decides.

A proposal at or under the rule's cap is approved on the spot; above it, it waits for the
rule's named approver.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from loopline.catalog.models import Severity
from loopline.customer.models import EntitlementRule, RemedyKind, Tier

SEVERITY_ORDER = [Severity.MINOR, Severity.MAJOR, Severity.CRITICAL]
CENT = Decimal("0.01")


@dataclass(frozen=True)
class CaseFacts:
    tier: Tier
    severity: Severity
    defect_code: str | None
    has_advisory: bool
    affected_qty: int
    failed_qty: int
    unit_cost: Decimal
    # The remedy kinds this account was granted for this advisory, on any case.
    granted: frozenset[RemedyKind] = frozenset()


@dataclass(frozen=True)
class Proposal:
    kind: RemedyKind
    qty: int
    amount: Decimal
    auto_approved: bool
    details: dict[str, Any] = field(default_factory=dict)


def matching_rule(rules: Iterable[EntitlementRule], facts: CaseFacts) -> EntitlementRule | None:
    """The first rule, by priority, whose every stated condition the case meets."""
    for rule in sorted(rules, key=lambda r: (r.priority, r.code)):
        if rule.tier is not None and rule.tier != facts.tier:
            continue
        if rule.min_severity is not None and SEVERITY_ORDER.index(Severity(facts.severity)) < SEVERITY_ORDER.index(
            Severity(rule.min_severity)
        ):
            continue
        if rule.requires_advisory is not None and rule.requires_advisory != facts.has_advisory:
            continue
        if rule.defect_codes is not None and facts.defect_code not in rule.defect_codes:
            continue
        return rule
    return None


def propose(rule: EntitlementRule, facts: CaseFacts) -> list[Proposal]:
    """What the rule grants this case, each part priced and marked auto-approved or not."""
    terms = rule.terms
    parts: list[tuple[RemedyKind, int, Decimal, dict[str, Any]]] = []
    if rule.remedy == RemedyKind.REPLACE_ALL and RemedyKind.REPLACE_ALL not in facts.granted:
        freight = Decimal(str(terms.get("freight_per_unit", "0"))) * facts.affected_qty
        goods = facts.unit_cost * facts.affected_qty
        details = {"goods": goods, "freight": freight, "freight_mode": terms.get("freight", "standard")}
        parts.append((RemedyKind.REPLACE_ALL, facts.affected_qty, goods + freight, details))
    replaces_failed = rule.remedy == RemedyKind.REPLACE_FAILED or (
        rule.remedy == RemedyKind.CREDIT_PCT and bool(terms.get("replace_failed"))
    )
    if replaces_failed and facts.failed_qty:
        parts.append((RemedyKind.REPLACE_FAILED, facts.failed_qty, facts.unit_cost * facts.failed_qty, {}))
    if rule.remedy == RemedyKind.CREDIT_PCT and RemedyKind.CREDIT_PCT not in facts.granted:
        credited = max(facts.affected_qty - facts.failed_qty, 0)
        pct = Decimal(str(terms.get("credit_pct", 0)))
        amount = facts.unit_cost * credited * pct / 100
        parts.append((RemedyKind.CREDIT_PCT, credited, amount, {"credit_pct": pct}))
    if rule.remedy in (RemedyKind.INVESTIGATE, RemedyKind.EXPEDITE, RemedyKind.ONSITE):
        parts.append((RemedyKind(rule.remedy), 0, Decimal(0), {}))
    proposals = []
    for kind, qty, amount, details in parts:
        # Commercial rounding (half a cent up, not to even, Decimal's default), and the cap is held
        # against the amount on record, not against fractions of a cent it never shows.
        cents = amount.quantize(CENT, rounding=ROUND_HALF_UP)
        proposals.append(
            Proposal(
                kind=kind,
                qty=qty,
                amount=cents,
                auto_approved=_within_cap(rule, kind, cents),
                details={"rule": rule.code, **details},
            )
        )
    return proposals


def _within_cap(rule: EntitlementRule, kind: RemedyKind, amount: Decimal) -> bool:
    if kind == RemedyKind.INVESTIGATE or rule.cap_amount is None:
        return False
    return amount <= rule.cap_amount


def total(proposals: Sequence[Proposal]) -> Decimal:
    return sum((p.amount for p in proposals), Decimal(0))
