"""Statistical process control: run rules on subgroup means, control limits, process capability.

Pure arithmetic over numbers, with no database, clock or I/O, so that every rule can be
tested against its textbook sequence. `inspection.submit` passes in the latest window of
subgroup means of one characteristic on one plant and line, together with the rules its
characteristic asks for. Loop rule 2 ("SPC early warning") acts on the signals completed by
the newest subgroup.

Conventions shared by all rules:

* Sigma is the standard deviation of the plotted points, the subgroup means (sigma of x̄),
  not of single measurements. Zones are measured from the centre line in multiples of that sigma.
* "Beyond k sigma" is strict: ``|x - centre| > k·sigma``. A point exactly on a zone edge is inside the
  zone, so a mean at exactly 3 sigma does not trip WE1. "Within k sigma" is the complement,
  ``|x - centre| ≤ k·sigma``, so each point is either within or beyond.
* A point is on the upper side if it is above the centre line and on the lower side if it is
  below. A point exactly on the centre line is on neither side and breaks a same-side run.
* In the trend (NELSON3) and alternation (NELSON4) rules a point equal to its predecessor
  is neither up nor down, so it breaks the trend or the alternation.
* A rule signals at the point that completes its pattern. It signals again at each later
  point that completes the pattern anew: ten means above the centre line give WE4 at the 8th,
  9th and 10th. The process is still out of control, and a caller that looks only at the
  newest point should see that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from itertools import pairwise
from statistics import fmean, stdev


class Rule(StrEnum):
    """The run rules a characteristic can select (`Characteristic.spc_rules` holds the values).

    Western Electric rules 1-3 are the same tests as Nelson rules 1, 5 and 6. Both names are
    kept so that a control plan can be written in either convention.
    """

    WE1 = "WE1"
    """Western Electric 1: one point beyond 3 sigma on either side."""
    WE2 = "WE2"
    """Western Electric 2: two out of three consecutive points beyond 2 sigma on the same side."""
    WE3 = "WE3"
    """Western Electric 3: four out of five consecutive points beyond 1 sigma on the same side."""
    WE4 = "WE4"
    """Western Electric 4: eight consecutive points on the same side of the centre line."""
    NELSON1 = "NELSON1"
    """Nelson 1: one point beyond 3 sigma on either side."""
    NELSON2 = "NELSON2"
    """Nelson 2: nine points in a row on the same side of the centre line."""
    NELSON3 = "NELSON3"
    """Nelson 3: six points in a row steadily increasing, or steadily decreasing (a tie breaks the trend)."""
    NELSON4 = "NELSON4"
    """Nelson 4: fourteen points in a row alternating up and down (a tie breaks the alternation)."""
    NELSON5 = "NELSON5"
    """Nelson 5: two out of three points in a row beyond 2 sigma on the same side."""
    NELSON6 = "NELSON6"
    """Nelson 6: four out of five points in a row beyond 1 sigma on the same side."""
    NELSON7 = "NELSON7"
    """Nelson 7: fifteen points in a row within 1 sigma, on either side (the process varies too little)."""
    NELSON8 = "NELSON8"
    """Nelson 8: eight points in a row beyond 1 sigma, on either side or both (none in the central zone)."""


D2_MOVING_RANGE = 2 / math.sqrt(math.pi)
"""d2 for a range of two observations (1.128 in the tables): the mean |X₁ - X₂| of two standard normal values."""


def c4(n: int) -> float:
    """The bias of the sample standard deviation: E[s] = c4(n)·sigma for n normal observations.

    Computed from the gamma function, c4(n) = √(2/(n-1))·Γ(n/2)/Γ((n-1)/2). The log-gamma form
    does not overflow for the large subgroups a plan allows (up to 1000).
    """
    if n < 2:
        raise ValueError(f"c4 needs a subgroup of at least 2 values, got {n}")
    return math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


@dataclass(frozen=True, slots=True)
class ControlLimits:
    """Centre line and sigma of the plotted subgroup means. The zones and the 3 sigma limits derive from these two.

    Give them explicitly, for example the nominal value and a known process sigma through
    `from_process_sigma`, or estimate them from a baseline with `estimate_limits`.
    """

    centre: float
    sigma: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.centre):
            raise ValueError(f"control-chart centre must be a finite number, got {self.centre}")
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"control-chart sigma must be a positive finite number, got {self.sigma}")

    @classmethod
    def from_process_sigma(cls, centre: float, process_sigma: float, subgroup_size: int) -> ControlLimits:
        """Limits for means of `subgroup_size` values drawn from a process of known sigma: sigma of x̄ = sigma/√n."""
        if subgroup_size < 1:
            raise ValueError(f"subgroup size must be at least 1, got {subgroup_size}")
        return cls(centre=centre, sigma=process_sigma / math.sqrt(subgroup_size))

    @property
    def lower(self) -> float:
        """The lower control limit, centre - 3 sigma."""
        return self.centre - 3 * self.sigma

    @property
    def upper(self) -> float:
        """The upper control limit, centre + 3 sigma."""
        return self.centre + 3 * self.sigma


def estimate_limits(subgroups: Sequence[Sequence[float]]) -> ControlLimits | None:
    """Estimate the x̄-chart limits from baseline subgroups that are all the same size n.

    The centre is the grand mean. The sigma of the means is estimated from the spread within
    subgroups, not from the scatter of the means themselves: a drift between subgroups is
    what the rules should detect, so it must not widen the limits.

    * For n ≥ 2, the process sigma is s̄/c4(n), the mean sample standard deviation corrected
      for its bias, and sigma of x̄ is that value divided by √n.
    * For n = 1 (individual values) there is no spread within a subgroup. The process sigma is
      the mean moving range of consecutive values divided by d2 = 1.128.

    Returns None when the baseline cannot give limits yet: no subgroups, a single
    individual value, or no spread at all. The caller then reports no SPC signals rather
    than dividing by zero. Subgroups that are empty or of unequal sizes raise ValueError,
    because their means would not share one sigma.
    """
    if not subgroups:
        return None
    sizes = {len(subgroup) for subgroup in subgroups}
    if 0 in sizes:
        raise ValueError("a baseline subgroup is empty")
    if len(sizes) > 1:
        raise ValueError(f"baseline subgroups must all have the same size, got sizes {sorted(sizes)}")
    (size,) = sizes
    means = [fmean(subgroup) for subgroup in subgroups]
    if size == 1:
        if len(means) < 2:
            return None
        process_sigma = fmean(abs(later - earlier) for earlier, later in pairwise(means)) / D2_MOVING_RANGE
    else:
        process_sigma = fmean(stdev(subgroup) for subgroup in subgroups) / c4(size)
    if process_sigma == 0:
        return None
    return ControlLimits.from_process_sigma(fmean(means), process_sigma, size)


@dataclass(frozen=True, slots=True)
class Signal:
    """A rule whose pattern is complete at `index`. `indices` are the points that make up the pattern.

    For the k-out-of-m rules (WE1-3, NELSON1, 5, 6), `indices` holds only the qualifying
    points and not the in-between point that stayed inside the zone. For the run rules it
    holds the whole run. `index` is always the last entry of `indices`.
    """

    rule: Rule
    index: int
    indices: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Chart:
    """The points of one evaluation, with their deviations from the centre line computed once."""

    means: Sequence[float]
    deviations: list[float]
    sigma: float


_Match = tuple[int, tuple[int, ...]]
"""A completed pattern: the index that completed it and the indices involved."""


def _run_ends(flags: Iterable[bool], length: int) -> Iterator[int]:
    """The indices at which the last `length` flags are all true."""
    run = 0
    for index, flag in enumerate(flags):
        run = run + 1 if flag else 0
        if run >= length:
            yield index


def _last(index: int, count: int) -> tuple[int, ...]:
    """The `count` indices ending at `index`."""
    return tuple(range(index - count + 1, index + 1))


def _direction(delta: float) -> int:
    """+1 for a step up, -1 for a step down, 0 for a tie."""
    return (delta > 0) - (delta < 0)


def _beyond_on_one_side(chart: _Chart, count: int, window: int, zone: float) -> Iterator[_Match]:
    """At least `count` of `window` consecutive points beyond zone·sigma on the same side.

    The completing point must itself qualify. If it does not, the qualifying points already
    lay within one window ending at an earlier point, and the pattern was reported there.
    Near the start of the chart the window is cut short, since the missing points could
    only lower the count.
    """
    limit = zone * chart.sigma
    for side in (1, -1):
        beyond = [side * deviation > limit for deviation in chart.deviations]
        for index, qualifies in enumerate(beyond):
            if qualifies:
                involved = tuple(i for i in range(max(0, index - window + 1), index + 1) if beyond[i])
                if len(involved) >= count:
                    yield index, involved


def _same_side_run(chart: _Chart, length: int) -> Iterator[_Match]:
    """`length` points in a row strictly above, or strictly below, the centre line."""
    for side in (1, -1):
        for index in _run_ends((side * deviation > 0 for deviation in chart.deviations), length):
            yield index, _last(index, length)


def _zone_run(chart: _Chart, length: int, *, beyond_one_sigma: bool) -> Iterator[_Match]:
    """`length` points in a row all within 1 sigma (NELSON7), or all beyond it on either side (NELSON8)."""
    flags = ((abs(deviation) > chart.sigma) == beyond_one_sigma for deviation in chart.deviations)
    for index in _run_ends(flags, length):
        yield index, _last(index, length)


def _trend(chart: _Chart, length: int) -> Iterator[_Match]:
    """`length` points in a row, each strictly above (or each strictly below) the one before.

    A point is flagged when the step into it goes in the given direction. `length` points
    make length - 1 such steps.
    """
    steps = [_direction(later - earlier) for earlier, later in pairwise(chart.means)]
    for direction in (1, -1):
        flags = [False] + [step == direction for step in steps]
        for index in _run_ends(flags, length - 1):
            yield index, _last(index, length)


def _alternation(chart: _Chart, length: int) -> Iterator[_Match]:
    """`length` points in a row whose steps alternate up, down, up… (or down, up, down…).

    A point is flagged when the step into it is opposite to the step before, so a point
    needs two predecessors. `length` points make length - 2 such flags.
    """
    steps = [_direction(later - earlier) for earlier, later in pairwise(chart.means)]
    flags = [False, False] + [step * previous < 0 for previous, step in pairwise(steps)]
    for index in _run_ends(flags, length - 2):
        yield index, _last(index, length)


_DETECTORS: dict[Rule, Callable[[_Chart], Iterator[_Match]]] = {
    Rule.WE1: partial(_beyond_on_one_side, count=1, window=1, zone=3),
    Rule.WE2: partial(_beyond_on_one_side, count=2, window=3, zone=2),
    Rule.WE3: partial(_beyond_on_one_side, count=4, window=5, zone=1),
    Rule.WE4: partial(_same_side_run, length=8),
    Rule.NELSON1: partial(_beyond_on_one_side, count=1, window=1, zone=3),
    Rule.NELSON2: partial(_same_side_run, length=9),
    Rule.NELSON3: partial(_trend, length=6),
    Rule.NELSON4: partial(_alternation, length=14),
    Rule.NELSON5: partial(_beyond_on_one_side, count=2, window=3, zone=2),
    Rule.NELSON6: partial(_beyond_on_one_side, count=4, window=5, zone=1),
    Rule.NELSON7: partial(_zone_run, length=15, beyond_one_sigma=False),
    Rule.NELSON8: partial(_zone_run, length=8, beyond_one_sigma=True),
}

_RULE_ORDER = {rule: position for position, rule in enumerate(Rule)}


def parse_rules(codes: Iterable[str | Rule]) -> tuple[Rule, ...]:
    """The rules named by `codes`, in their given order and without repeats.

    An unknown code raises ValueError naming it, so that configuration can be checked when
    it is saved rather than when the first inspection arrives.
    """
    rules: dict[Rule, None] = {}
    for code in codes:
        try:
            rules[Rule(code)] = None
        except ValueError:
            raise ValueError(f"unknown SPC rule {code!r}; known rules are {', '.join(Rule)}") from None
    return tuple(rules)


def evaluate(means: Sequence[float], limits: ControlLimits, rules: Iterable[str | Rule]) -> list[Signal]:
    """Every completed pattern of the selected `rules` in `means`, oldest point first.

    `means` are subgroup means in production order. Signals are sorted by the index that
    completed them, then in the order of `Rule`. Each rule makes one pass over the points
    and looks back at most 15 of them, so a window of about 100 means costs O(n·rules).
    Unknown rule codes raise ValueError (see `parse_rules`).
    """
    chart = _Chart(means=means, deviations=[mean - limits.centre for mean in means], sigma=limits.sigma)
    signals = [
        Signal(rule=rule, index=index, indices=indices)
        for rule in parse_rules(rules)
        for index, indices in _DETECTORS[rule](chart)
    ]
    signals.sort(key=lambda signal: (signal.index, _RULE_ORDER[signal.rule]))
    return signals


def _check_spec_limits(lsl: float | None, usl: float | None) -> None:
    if lsl is not None and usl is not None and lsl > usl:
        raise ValueError(f"lower spec limit {lsl} is above upper spec limit {usl}")


def out_of_spec(value: float, lsl: float | None, usl: float | None) -> bool:
    """Whether `value` is outside the spec limits. The limits themselves are in spec; a missing limit does not bound."""
    _check_spec_limits(lsl, usl)
    return (lsl is not None and value < lsl) or (usl is not None and value > usl)


@dataclass(frozen=True, slots=True)
class Capability:
    """Process capability of a set of individual measurements against their spec limits.

    `sigma` is the overall sample standard deviation (n - 1) of all the values, so in AIAG
    terms these are performance indices, Pp/Ppk. They are still called cp and cpk because
    the control plan's target (`Characteristic.cpk_target`) uses that name. Overall sigma takes
    in drift between subgroups as well as the scatter within them. It is therefore usually the
    more conservative figure, and it needs no assumption about subgroup sizes.

    An index is None when it cannot be computed: fewer than two values, no spread, or no
    limit on that side. cp needs both limits. cpk is the smaller of cpl and cpu, or the
    only one present when the spec is one-sided.
    """

    mean: float | None
    sigma: float | None
    cp: float | None
    cpk: float | None
    cpl: float | None
    cpu: float | None
    n: int


def capability(values: Iterable[float], lsl: float | None, usl: float | None) -> Capability:
    """Cp, Cpk, Cpl and Cpu of `values` against `lsl`/`usl`, with the overall sigma (see `Capability`).

    Cpu = (USL - mean)/(3 sigma), Cpl = (mean - LSL)/(3 sigma), Cp = (USL - LSL)/(6 sigma), Cpk = min(Cpl, Cpu).
    A mean outside the spec gives a negative Cpk, as it should.
    """
    _check_spec_limits(lsl, usl)
    sample = list(values)
    mean = fmean(sample) if sample else None
    sigma = stdev(sample) if len(sample) >= 2 else None
    if mean is None or not sigma:
        return Capability(mean=mean, sigma=sigma, cp=None, cpk=None, cpl=None, cpu=None, n=len(sample))
    cpl = (mean - lsl) / (3 * sigma) if lsl is not None else None
    cpu = (usl - mean) / (3 * sigma) if usl is not None else None
    cp = (usl - lsl) / (6 * sigma) if lsl is not None and usl is not None else None
    present = [index for index in (cpl, cpu) if index is not None]
    cpk = min(present) if present else None
    return Capability(mean=mean, sigma=sigma, cp=cp, cpk=cpk, cpl=cpl, cpu=cpu, n=len(sample))


def meets(cpk: float | None, target: float) -> bool:
    """Whether a capability index reaches its target (cpk ≥ target). An unknown cpk does not meet any target."""
    return cpk is not None and cpk >= target
