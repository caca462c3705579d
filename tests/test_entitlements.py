"""Entitlement decisions on the demo's rules R1-R4, with the scenario's amounts worked by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from loopline.catalog.models import Severity
from loopline.customer.entitlements import CaseFacts, matching_rule, propose
from loopline.customer.models import EntitlementRule, RemedyKind, Tier
from loopline.demo.loader import ENTITLEMENT_RULES

RULES = [EntitlementRule.model_validate({k: v for k, v in r.items() if k != "approver"}) for r in ENTITLEMENT_RULES]
HLD_200 = Decimal("18")


def facts(
    tier: Tier,
    *,
    advisory: bool = True,
    severity: Severity = Severity.MAJOR,
    granted: tuple[RemedyKind, ...] = (),
    **quantities: int,
) -> CaseFacts:
    return CaseFacts(
        tier=tier,
        severity=severity,
        defect_code="CC-THIN",
        has_advisory=advisory,
        affected_qty=quantities.get("affected", 0),
        failed_qty=quantities.get("failed", 0),
        unit_cost=HLD_200,
        granted=frozenset(granted),
    )


@pytest.mark.parametrize(
    ("case", "rule", "expected"),
    [
        # A-001 (VIP): 2,000 x 18 = 36,000 goods + 2,000 x 2.40 = 4,800 air freight = 40,800 <= 60k.
        (facts(Tier.VIP, affected=2000), "R1", [(RemedyKind.REPLACE_ALL, 2000, "40800.00", True)]),
        # A-002 (key): 1,200 x 18 = 21,600 <= 30k, standard freight.
        (facts(Tier.KEY, affected=1200), "R2", [(RemedyKind.REPLACE_ALL, 1200, "21600.00", True)]),
        # A-003 (standard): 10 % credit on 800 x 18 = 1,440 <= 2k.
        (facts(Tier.STANDARD, affected=800), "R3", [(RemedyKind.CREDIT_PCT, 800, "1440.00", True)]),
        # CS-1004: three failed units replaced (3 x 18 = 54); the credit went with CS-1003.
        (
            facts(Tier.STANDARD, affected=3, failed=3, granted=(RemedyKind.CREDIT_PCT,)),
            "R3",
            [(RemedyKind.REPLACE_FAILED, 3, "54.00", True)],
        ),
        # A-001's workshop complains of 3 units of lot 018: they are among the 2,000 being replaced.
        (facts(Tier.VIP, affected=3, failed=3, granted=(RemedyKind.REPLACE_ALL,)), "R1", []),
        # Over the cap: 10 % of 2,000 x 18 = 3,600 > 2k waits for the QA manager.
        (facts(Tier.STANDARD, affected=2000), "R3", [(RemedyKind.CREDIT_PCT, 2000, "3600.00", False)]),
        # CS-1005: no advisory, so investigation first; a person decides.
        (
            facts(Tier.STANDARD, advisory=False, severity=Severity.MINOR, failed=4),
            "R4",
            [(RemedyKind.INVESTIGATE, 0, "0.00", False)],
        ),
    ],
)
def test_the_first_matching_rule_prices_the_remedy(
    case: CaseFacts, rule: str, expected: list[tuple[RemedyKind, int, str, bool]]
) -> None:
    matched = matching_rule(RULES, case)
    assert matched is not None
    assert matched.code == rule
    assert [(p.kind, p.qty, str(p.amount), p.auto_approved) for p in propose(matched, case)] == expected


def test_a_vip_case_below_the_severity_threshold_matches_no_rule() -> None:
    assert matching_rule(RULES, facts(Tier.VIP, severity=Severity.MINOR, affected=10)) is None
