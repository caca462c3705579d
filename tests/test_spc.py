"""The SPC module: each rule on its textbook pattern and its near miss, control limits, capability.

Most sequences are on a unit chart (centre 0, sigma 1), so a value reads directly as its
distance from the centre line in sigma.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopline.quality.spc import (
    D2_MOVING_RANGE,
    Capability,
    ControlLimits,
    Rule,
    Signal,
    c4,
    capability,
    estimate_limits,
    evaluate,
    meets,
    out_of_spec,
    parse_rules,
)

UNIT = ControlLimits(centre=0.0, sigma=1.0)


def fired_at(means: list[float], rule: Rule | str, limits: ControlLimits = UNIT) -> list[int]:
    """The indices at which `rule` alone signals on `means`."""
    return [signal.index for signal in evaluate(means, limits, [rule])]


# --- one point beyond 3 sigma: WE1 and NELSON1 --------------------------------------------------


@pytest.mark.parametrize("rule", [Rule.WE1, Rule.NELSON1])
@pytest.mark.parametrize("outlier", [3.01, -3.01, 5.0])
def test_beyond_three_sigma_fires_at_the_outlier(rule: Rule, outlier: float) -> None:
    assert fired_at([0.5, -1.0, outlier, 0.2], rule) == [2]


@pytest.mark.parametrize("rule", [Rule.WE1, Rule.NELSON1])
@pytest.mark.parametrize("edge", [3.0, -3.0])
def test_a_point_exactly_at_three_sigma_is_not_beyond(rule: Rule, edge: float) -> None:
    assert fired_at([0.5, edge, 2.9], rule) == []


def test_beyond_three_sigma_uses_the_chart_centre_and_sigma() -> None:
    limits = ControlLimits(centre=50.0, sigma=2.0)  # 3 sigma edges at 44 and 56
    assert fired_at([56.0, 44.0, 56.5, 43.5], Rule.WE1, limits) == [2, 3]


# --- two of three beyond 2 sigma on one side: WE2 and NELSON5 -------------------------------------


@pytest.mark.parametrize("rule", [Rule.WE2, Rule.NELSON5])
@pytest.mark.parametrize(
    ("means", "expected"),
    [
        ([0.0, 2.5, 2.1], [2]),  # two in a row
        ([0.0, 2.5, 0.3, 2.1], [3]),  # two of three, one inside between them
        ([0.0, -2.5, -1.0, -2.2], [3]),  # below the centre line
        ([2.5, 2.1, 0.0], [1]),  # complete at the second, the point after adds nothing
    ],
)
def test_two_of_three_beyond_two_sigma_fires_where_the_second_arrives(
    rule: Rule, means: list[float], expected: list[int]
) -> None:
    assert fired_at(means, rule) == expected


@pytest.mark.parametrize("rule", [Rule.WE2, Rule.NELSON5])
@pytest.mark.parametrize(
    "means",
    [
        [0.0, 2.5, 1.9, 1.5],  # only one of three beyond 2 sigma
        [0.0, 2.5, -2.5, 0.0],  # two beyond, but on opposite sides
        [2.5, 0.0, 0.0, 2.5],  # two beyond, but four points apart
        [2.0, 2.0, 2.5],  # exactly 2 sigma is not beyond
    ],
)
def test_two_of_three_near_misses_do_not_fire(rule: Rule, means: list[float]) -> None:
    assert fired_at(means, rule) == []


def test_two_of_three_reports_only_the_qualifying_points() -> None:
    assert evaluate([0.0, 2.5, 0.3, 2.1], UNIT, [Rule.WE2]) == [Signal(rule=Rule.WE2, index=3, indices=(1, 3))]


# --- four of five beyond 1 sigma on one side: WE3 and NELSON6 -------------------------------------


@pytest.mark.parametrize("rule", [Rule.WE3, Rule.NELSON6])
@pytest.mark.parametrize(
    ("means", "expected"),
    [
        ([0.0, 1.5, 1.2, 1.1, 1.8], [4]),  # four in a row
        ([1.5, 0.2, 1.2, 1.1, 1.8], [4]),  # four of five
        ([-1.5, -1.2, -0.9, -1.1, -1.8], [4]),  # below the centre line
    ],
)
def test_four_of_five_beyond_one_sigma_fires_where_the_fourth_arrives(
    rule: Rule, means: list[float], expected: list[int]
) -> None:
    assert fired_at(means, rule) == expected


@pytest.mark.parametrize("rule", [Rule.WE3, Rule.NELSON6])
@pytest.mark.parametrize(
    "means",
    [
        [1.5, 0.2, 1.2, 0.5, 1.8],  # three of five
        [0.0, 1.5, -1.2, 1.2, 1.8],  # four beyond 1 sigma, but one on the other side
        [1.5, 0.2, 0.3, 1.2, 1.1, 1.8],  # four beyond, but spread over six points
        [1.5, 1.0, 1.2, 1.1, 1.0],  # exactly 1 sigma is not beyond
    ],
)
def test_four_of_five_near_misses_do_not_fire(rule: Rule, means: list[float]) -> None:
    assert fired_at(means, rule) == []


# --- runs on one side: WE4 (eight) and NELSON2 (nine) ----------------------------------------


@pytest.mark.parametrize(("rule", "length"), [(Rule.WE4, 8), (Rule.NELSON2, 9)])
@pytest.mark.parametrize("side", [1, -1])
def test_a_run_on_one_side_fires_at_its_last_point(rule: Rule, length: int, side: int) -> None:
    means = [-side * 0.5] + [side * 0.1 * (1 + i % 3) for i in range(length)]
    assert evaluate(means, UNIT, [rule]) == [Signal(rule=rule, index=length, indices=tuple(range(1, length + 1)))]


@pytest.mark.parametrize(("rule", "length"), [(Rule.WE4, 8), (Rule.NELSON2, 9)])
def test_a_run_one_short_does_not_fire(rule: Rule, length: int) -> None:
    assert fired_at([0.4] * (length - 1) + [-0.4], rule) == []


@pytest.mark.parametrize(("rule", "length"), [(Rule.WE4, 8), (Rule.NELSON2, 9)])
def test_a_point_on_the_centre_line_breaks_a_run(rule: Rule, length: int) -> None:
    assert fired_at([0.4] * (length - 1) + [0.0] + [0.4] * (length - 1), rule) == []


def test_a_longer_run_signals_at_every_point_that_completes_it_anew() -> None:
    assert fired_at([0.4] * 10, Rule.WE4) == [7, 8, 9]


# --- NELSON3: six in a row steadily increasing or decreasing ---------------------------------


def test_six_increasing_fires_at_the_sixth() -> None:
    assert evaluate([0.0, -2.0, -1.5, -0.2, 0.1, 1.4, 2.2], UNIT, ["NELSON3"]) == [
        Signal(rule=Rule.NELSON3, index=6, indices=(1, 2, 3, 4, 5, 6))
    ]


def test_six_decreasing_fires_at_the_sixth() -> None:
    assert fired_at([2.0, 1.0, 0.5, 0.0, -0.5, -1.0], Rule.NELSON3) == [5]


def test_five_increasing_do_not_fire() -> None:
    assert fired_at([1.0, -2.0, -1.5, -0.2, 0.1, 1.4, 1.0], Rule.NELSON3) == []


def test_a_tie_breaks_the_trend() -> None:
    assert fired_at([-2.0, -1.5, -0.2, -0.2, 0.1, 1.4, 2.2], Rule.NELSON3) == []


def test_the_demo_drift_on_c1_fires_nelson3_and_not_we1() -> None:
    """Scenario step 1: lots 016-017 drift down within spec; Cpk 1.62 at nominal implies sigma = 25/(3·1.62)."""
    limits = ControlLimits.from_process_sigma(centre=50.0, process_sigma=25 / (3 * 1.62), subgroup_size=5)
    signals = evaluate([52.1, 50.4, 48.9, 47.0, 45.2, 43.8], limits, ["WE1", "NELSON3"])
    assert signals == [Signal(rule=Rule.NELSON3, index=5, indices=(0, 1, 2, 3, 4, 5))]


# --- NELSON4: fourteen in a row alternating up and down ----------------------------------------


def zigzag(count: int, first_step_up: bool = True) -> list[float]:
    """`count` points whose steps alternate, starting up (or down), all within ±1 sigma."""
    sign = 1 if first_step_up else -1
    return [sign * (0.5 if i % 2 else -0.5) for i in range(count)]


@pytest.mark.parametrize("first_step_up", [True, False])
def test_fourteen_alternating_fire_at_the_fourteenth(first_step_up: bool) -> None:
    # The step into the zigzag goes the same way as its first step, so it is no part of the alternation.
    means = [-3.0 if first_step_up else 3.0, *zigzag(14, first_step_up)]
    assert evaluate(means, UNIT, [Rule.NELSON4]) == [Signal(rule=Rule.NELSON4, index=14, indices=tuple(range(1, 15)))]


def test_thirteen_alternating_do_not_fire() -> None:
    assert fired_at(zigzag(13), Rule.NELSON4) == []


def test_a_tie_breaks_the_alternation() -> None:
    means = zigzag(14)
    means[7] = means[6]
    assert fired_at(means, Rule.NELSON4) == []


# --- NELSON7: fifteen in a row within 1 sigma -----------------------------------------------------


def test_fifteen_within_one_sigma_fire_at_the_fifteenth() -> None:
    means = [1.5] + [0.9, -0.9, 1.0, -1.0, 0.0] * 3  # the zone edge ±1 sigma counts as within
    assert evaluate(means, UNIT, [Rule.NELSON7]) == [Signal(rule=Rule.NELSON7, index=15, indices=tuple(range(1, 16)))]


def test_fourteen_within_one_sigma_do_not_fire() -> None:
    assert fired_at([1.5] + [0.5, -0.5] * 7 + [-1.01], Rule.NELSON7) == []


# --- NELSON8: eight in a row beyond 1 sigma, either side ------------------------------------------


@pytest.mark.parametrize("side_pattern", [[1] * 8, [-1] * 8, [1, -1] * 4])
def test_eight_beyond_one_sigma_fire_at_the_eighth(side_pattern: list[int]) -> None:
    means = [0.0] + [side * 1.5 for side in side_pattern]
    assert evaluate(means, UNIT, [Rule.NELSON8]) == [Signal(rule=Rule.NELSON8, index=8, indices=tuple(range(1, 9)))]


@pytest.mark.parametrize("inside", [0.5, 1.0, -1.0])
def test_one_point_inside_one_sigma_breaks_the_eight(inside: float) -> None:
    means = [1.5, -1.5, 1.5, -1.5, inside, 1.5, -1.5, 1.5, -1.5]
    assert fired_at(means, Rule.NELSON8) == []


# --- rule selection and output -----------------------------------------------------------------


def test_only_the_selected_rules_run_and_signals_come_in_point_then_rule_order() -> None:
    means = [0.0, 2.5, 3.5]  # point 2 is beyond 3 sigma and completes two of three beyond 2 sigma
    assert [(s.index, s.rule) for s in evaluate(means, UNIT, ["NELSON5", "WE1", "WE2"])] == [
        (2, Rule.WE1),
        (2, Rule.WE2),
        (2, Rule.NELSON5),
    ]
    assert evaluate(means, UNIT, ["NELSON3"]) == []
    assert evaluate(means, UNIT, []) == []


def test_repeated_rule_codes_signal_once() -> None:
    assert fired_at([4.0], "WE1") == [0]
    assert evaluate([4.0], UNIT, ["WE1", Rule.WE1, "WE1"]) == [Signal(rule=Rule.WE1, index=0, indices=(0,))]


@pytest.mark.parametrize("code", ["WE5", "we1", "NELSON9", ""])
def test_unknown_rule_codes_are_refused_by_name(code: str) -> None:
    with pytest.raises(ValueError, match=f"unknown SPC rule '{code}'"):
        evaluate([0.0], UNIT, ["WE1", code])


def test_rule_codes_are_the_stored_strings() -> None:
    assert [str(rule) for rule in Rule] == [f"WE{i}" for i in range(1, 5)] + [f"NELSON{i}" for i in range(1, 9)]
    assert parse_rules(["NELSON3", "WE1", "NELSON3"]) == (Rule.NELSON3, Rule.WE1)


def test_no_points_no_signals() -> None:
    assert evaluate([], UNIT, list(Rule)) == []


# --- control limits ----------------------------------------------------------------------------


def test_c4_matches_its_closed_forms_and_the_tables() -> None:
    assert c4(2) == pytest.approx(math.sqrt(2 / math.pi), abs=1e-12)  # √2·Γ(1)/Γ(½) = √(2/π)
    assert c4(3) == pytest.approx(math.sqrt(math.pi) / 2, abs=1e-12)  # Γ(3/2)/Γ(1) = √π/2
    assert c4(5) == pytest.approx(0.9400, abs=5e-5)
    assert c4(25) == pytest.approx(0.9896, abs=5e-5)
    assert 0.9997 < c4(1000) < 1
    with pytest.raises(ValueError, match="at least 2"):
        c4(1)


def test_limits_from_subgroups_use_the_mean_standard_deviation_over_c4() -> None:
    # Each subgroup has deviations -2, -1, 0, 1, 2 around its mean: s² = 10/4 = 2.5, so s̄ = √2.5.
    # Grand mean (50 + 52)/2 = 51; process sigma = √2.5/c4(5) = 1.581139/0.939986 = 1.682088;
    # sigma(x̄) = 1.682088/√5 = 0.752253; control limits 51 ± 3·0.752253 = 48.743, 53.257.
    limits = estimate_limits([[48, 49, 50, 51, 52], [50, 51, 52, 53, 54]])
    assert limits is not None
    assert limits.centre == pytest.approx(51.0, abs=1e-12)
    assert limits.sigma == pytest.approx(math.sqrt(2.5) / c4(5) / math.sqrt(5), abs=1e-12)
    assert limits.sigma == pytest.approx(0.752253, abs=1e-6)
    assert (limits.lower, limits.upper) == pytest.approx((48.743, 53.257), abs=1e-3)


def test_limits_from_individual_values_use_the_mean_moving_range_over_d2() -> None:
    # Moving ranges |52-50|, |49-52|, |53-49| = 2, 3, 4: mean 3; sigma = 3/1.128 = 2.6596 (2.65868 with d2 = 2/√π).
    limits = estimate_limits([[50], [52], [49], [53]])
    assert limits is not None
    assert pytest.approx(1.128, abs=5e-4) == D2_MOVING_RANGE
    assert limits.centre == pytest.approx(51.0, abs=1e-12)
    assert limits.sigma == pytest.approx(3 / D2_MOVING_RANGE, abs=1e-12)
    assert limits.sigma == pytest.approx(2.65868, abs=1e-5)


@pytest.mark.parametrize("baseline", [[], [[50.0]], [[50.0, 50.0], [51.0, 51.0]], [[50.0], [50.0], [50.0]]])
def test_a_baseline_without_spread_gives_no_limits(baseline: list[list[float]]) -> None:
    assert estimate_limits(baseline) is None


@pytest.mark.parametrize(
    ("baseline", "message"),
    [([[50.0, 51.0], [50.0, 51.0, 52.0]], "same size"), ([[50.0, 51.0], []], "empty")],
)
def test_a_malformed_baseline_is_refused(baseline: list[list[float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate_limits(baseline)


def test_explicit_limits_from_nominal_and_process_sigma() -> None:
    limits = ControlLimits.from_process_sigma(centre=50.0, process_sigma=5.0, subgroup_size=5)
    assert limits == ControlLimits(centre=50.0, sigma=5.0 / math.sqrt(5))


@pytest.mark.parametrize(("centre", "sigma"), [(0.0, 0.0), (0.0, -1.0), (math.nan, 1.0), (0.0, math.inf)])
def test_degenerate_limits_are_refused(centre: float, sigma: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        ControlLimits(centre=centre, sigma=sigma)


# --- capability --------------------------------------------------------------------------------


def test_cpk_against_a_hand_computation() -> None:
    # 48.2, 48.2, 50.2, 52.2, 52.2: mean 251/5 = 50.2; deviations -2, -2, 0, 2, 2; s² = 16/4 = 4, s = 2.
    # Cpu = (75 - 50.2)/(3·2) = 24.8/6 = 4.1333…; Cpl = (50.2 - 25)/6 = 25.2/6 = 4.2; Cp = 50/12 = 4.1666…
    # Cpk = min(Cpl, Cpu) = Cpu = 4.1333…
    result = capability([48.2, 48.2, 50.2, 52.2, 52.2], lsl=25, usl=75)
    assert result.n == 5
    assert result.mean == pytest.approx(50.2, abs=1e-9)
    assert result.sigma == pytest.approx(2.0, abs=1e-9)
    assert result.cpu == pytest.approx(24.8 / 6, abs=1e-9)
    assert result.cpl == pytest.approx(4.2, abs=1e-9)
    assert result.cp == pytest.approx(50 / 12, abs=1e-9)
    assert result.cpk == pytest.approx(24.8 / 6, abs=1e-9)
    assert meets(result.cpk, 1.33)


def test_cpk_of_the_thin_late_shift_of_lot_018_is_negative() -> None:
    # 24, 22, 23, 26, 21: mean 116/5 = 23.2 (below LSL 25); deviations 0.8, -1.2, -0.2, 2.8, -2.2;
    # squares 0.64 + 1.44 + 0.04 + 7.84 + 4.84 = 14.8; s² = 14.8/4 = 3.7, s = 1.92354.
    # Cpl = (23.2 - 25)/(3·1.92354) = -0.31192; Cpu = (75 - 23.2)/5.77062 = 8.97650; Cpk = Cpl.
    result = capability([24, 22, 23, 26, 21], lsl=25, usl=75)
    assert result.sigma == pytest.approx(math.sqrt(3.7), abs=1e-9)
    assert result.cpk == pytest.approx(-1.8 / (3 * math.sqrt(3.7)), abs=1e-9)
    assert result.cpk == pytest.approx(-0.31192, abs=1e-5)
    assert result.cpu == pytest.approx(51.8 / (3 * math.sqrt(3.7)), abs=1e-9)
    assert not meets(result.cpk, 1.33)


def test_a_one_sided_spec_gives_cpk_from_its_side_and_no_cp() -> None:
    # Solder voids 10, 12, 14 % against USL 25: mean 12, s = 2, Cpu = 13/6.
    upper_only = capability([10, 12, 14], lsl=None, usl=25)
    assert (upper_only.cp, upper_only.cpl) == (None, None)
    assert upper_only.cpk == upper_only.cpu == pytest.approx(13 / 6, abs=1e-9)
    lower_only = capability([10, 12, 14], lsl=4, usl=None)
    assert (lower_only.cp, lower_only.cpu) == (None, None)
    assert lower_only.cpk == lower_only.cpl == pytest.approx(8 / 6, abs=1e-9)


@pytest.mark.parametrize(
    ("values", "lsl", "usl", "expected"),
    [
        ([], 25, 75, Capability(mean=None, sigma=None, cp=None, cpk=None, cpl=None, cpu=None, n=0)),
        ([50.0], 25, 75, Capability(mean=50.0, sigma=None, cp=None, cpk=None, cpl=None, cpu=None, n=1)),
        ([50.0] * 4, 25, 75, Capability(mean=50.0, sigma=0.0, cp=None, cpk=None, cpl=None, cpu=None, n=4)),
        (
            [49.0, 51.0],
            None,
            None,
            Capability(mean=50.0, sigma=math.sqrt(2), cp=None, cpk=None, cpl=None, cpu=None, n=2),
        ),
    ],
)
def test_capability_without_enough_information_is_none_not_a_division_by_zero(
    values: list[float], lsl: float | None, usl: float | None, expected: Capability
) -> None:
    assert capability(values, lsl, usl) == expected


def test_meets_requires_a_known_cpk_at_or_above_target() -> None:
    assert meets(1.33, 1.33)
    assert meets(1.52, 1.33)
    assert not meets(1.32, 1.33)
    assert not meets(None, 1.33)


@pytest.mark.parametrize(
    ("value", "lsl", "usl", "expected"),
    [
        (25.0, 25, 75, False),
        (75.0, 25, 75, False),
        (24.99, 25, 75, True),
        (75.01, 25, 75, True),
        (99.0, None, 75, True),
        (-99.0, None, 75, False),
        (-99.0, 25, None, True),
        (1e9, None, None, False),
    ],
)
def test_out_of_spec_treats_the_limits_as_in_spec(
    value: float, lsl: float | None, usl: float | None, expected: bool
) -> None:
    assert out_of_spec(value, lsl, usl) is expected


def test_inverted_spec_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="above upper"):
        out_of_spec(50.0, 75, 25)
    with pytest.raises(ValueError, match="above upper"):
        capability([49.0, 51.0], 75, 25)


# --- properties --------------------------------------------------------------------------------

# Integer means, centre, sigma and shifts keep every subtraction exact, so the properties test the
# rules and not floating-point rounding at a zone edge. Values span ±4 sigma with sigma = 2, so every
# zone and its edges are reachable.
SIGMA = 2
means_strategy = st.lists(st.integers(min_value=-9, max_value=9), max_size=40)
centres = st.integers(min_value=-3, max_value=3)
ALL_RULES = list(Rule)


def fired(means: list[int], centre: int) -> list[tuple[Rule, int]]:
    return [(s.rule, s.index) for s in evaluate(means, ControlLimits(centre=centre, sigma=SIGMA), ALL_RULES)]


@given(value=st.integers(min_value=-(10**6), max_value=10**6), count=st.integers(min_value=0, max_value=40))
def test_a_constant_sequence_on_the_centre_line_fires_only_nelson7_from_the_fifteenth_point(
    value: int, count: int
) -> None:
    # On the centre line no point is on either side or beyond any zone, and every step is a tie,
    # which breaks trends and alternations; every point is within 1 sigma, so NELSON7 holds from 15 on.
    assert fired([value] * count, value) == [(Rule.NELSON7, index) for index in range(14, count)]


@given(means=means_strategy, centre=centres, shift=st.integers(min_value=-(10**6), max_value=10**6))
def test_shifting_the_means_and_the_centre_together_changes_nothing(means: list[int], centre: int, shift: int) -> None:
    assert fired([mean + shift for mean in means], centre + shift) == fired(means, centre)


@given(means=means_strategy, centre=centres)
def test_mirroring_around_the_centre_fires_the_same_rules(means: list[int], centre: int) -> None:
    assert fired([2 * centre - mean for mean in means], centre) == fired(means, centre)


@given(means=means_strategy, centre=centres)
def test_every_signal_ends_at_its_completing_point(means: list[int], centre: int) -> None:
    for signal in evaluate(means, ControlLimits(centre=centre, sigma=SIGMA), ALL_RULES):
        assert signal.indices[-1] == signal.index
        assert list(signal.indices) == sorted(set(signal.indices))
        assert signal.indices[0] >= 0
        assert signal.index < len(means)


@given(means=means_strategy, centre=centres)
def test_western_electric_1_to_3_are_nelson_1_5_and_6(means: list[int], centre: int) -> None:
    limits = ControlLimits(centre=centre, sigma=SIGMA)
    for western_electric, nelson in [(Rule.WE1, Rule.NELSON1), (Rule.WE2, Rule.NELSON5), (Rule.WE3, Rule.NELSON6)]:
        assert [s.indices for s in evaluate(means, limits, [western_electric])] == [
            s.indices for s in evaluate(means, limits, [nelson])
        ]
