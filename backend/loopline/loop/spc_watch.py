"""Loop rule 2: SPC early warning and capability, on every stored inspection.

For each characteristic the inspection measured, the subgroup means of the same
characteristic on the same plant and line (one subgroup per inspection, the newest
`WINDOW` by capture time, this one included) are checked against the characteristic's
chosen rules (`spc_rules`, see `quality/spc.py`) on control limits estimated from the
within-subgroup spread of subgroups of this inspection's size. A signal that involves
this inspection's subgroup is written on its measurements; when the inspection has no
out-of-spec value for that characteristic, it also opens a quality watch for the line's
supervisor — no customer action. Capability is recomputed over the same window and kept
as a snapshot beside its target.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.catalog.models import Characteristic, Line
from loopline.core.events import emit
from loopline.core.numbering import next_number
from loopline.quality import spc
from loopline.quality.models import (
    Batch,
    CapabilitySnapshot,
    Inspection,
    Measurement,
    QualityWatch,
    WatchStatus,
)

WINDOW = 100


@dataclass(frozen=True)
class Subgroup:
    inspection_id: str
    values: list[float]

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)


async def watch_line(
    session: AsyncSession,
    *,
    actor: str,
    inspection: Inspection,
    batch: Batch,
    characteristic: Characteristic,
    measurements: list[Measurement],
) -> QualityWatch | None:
    """Check one characteristic of a new inspection; the quality watch it opened, if any."""
    history = await _subgroups(session, batch, characteristic.code)
    values = [value for subgroup in history for value in subgroup.values]
    capability = spc.capability(values, characteristic.lsl, characteristic.usl)
    session.add(
        CapabilitySnapshot(
            plant_id=batch.plant_id,
            line=batch.line,
            characteristic_code=characteristic.code,
            inspection_id=inspection.id,
            subgroups=len(history),
            n=capability.n,
            mean=capability.mean,
            sigma=capability.sigma,
            cp=capability.cp,
            cpk=capability.cpk,
            cpk_target=characteristic.cpk_target,
            meets_target=(
                None if characteristic.cpk_target is None else spc.meets(capability.cpk, characteristic.cpk_target)
            ),
        )
    )
    rules = spc.parse_rules(characteristic.spc_rules)
    fired = sorted({signal.rule.value for signal in _signals_on(history, inspection.id, rules)})
    if not fired:
        await session.flush()
        return None
    for measurement in measurements:
        measurement.spc_signals = fired
    await session.flush()
    emit(
        session,
        "spc.signal",
        subject_type="inspection",
        subject_id=inspection.id,
        actor=actor,
        at=inspection.received_at,
        payload={"characteristic": characteristic.code, "line": batch.line, "rules": fired},
    )
    if any(m.out_of_spec for m in measurements):
        return None  # out of spec: rule 1 answers, with customer action
    return await _open_watch(
        session, actor=actor, inspection=inspection, batch=batch, code=characteristic.code, rules=fired
    )


def _signals_on(history: list[Subgroup], inspection_id: str, rules: tuple[spc.Rule, ...]) -> list[spc.Signal]:
    """The rules' signals that involve this inspection's subgroup."""
    if not rules:
        return []
    index = next(i for i, subgroup in enumerate(history) if subgroup.inspection_id == inspection_id)
    size = len(history[index].values)
    try:
        limits = spc.estimate_limits([s.values for s in history if len(s.values) == size])
    except ValueError:
        limits = None
    if limits is None:
        return []
    return [signal for signal in spc.evaluate([s.mean for s in history], limits, rules) if index in signal.indices]


async def _subgroups(session: AsyncSession, batch: Batch, code: str) -> list[Subgroup]:
    """The newest WINDOW subgroups of this characteristic on the batch's plant and line, oldest first."""
    recent = (
        select(col(Inspection.id))
        .join(Batch, col(Batch.id) == Inspection.batch_id)
        .join(Measurement, col(Measurement.inspection_id) == Inspection.id)
        .where(Batch.plant_id == batch.plant_id, Batch.line == batch.line, Measurement.characteristic_code == code)
        .group_by(col(Inspection.id), col(Inspection.captured_at))
        .order_by(col(Inspection.captured_at).desc(), col(Inspection.id).desc())
        .limit(WINDOW)
    ).subquery()
    rows = await session.execute(
        select(col(Inspection.id), col(Measurement.value))
        .join(Measurement, col(Measurement.inspection_id) == Inspection.id)
        .where(col(Inspection.id).in_(select(recent.c.id)), Measurement.characteristic_code == code)
        .order_by(col(Inspection.captured_at), col(Inspection.id), col(Measurement.sample_index))
    )
    grouped: defaultdict[str, list[float]] = defaultdict(list)
    for inspection_id, value in rows.all():
        grouped[inspection_id].append(value)
    return [Subgroup(inspection_id, values) for inspection_id, values in grouped.items()]


async def _open_watch(
    session: AsyncSession, *, actor: str, inspection: Inspection, batch: Batch, code: str, rules: list[str]
) -> QualityWatch | None:
    """A watch for the line's supervisor, unless one is open for this line and characteristic."""
    open_already = await session.scalar(
        select(col(QualityWatch.id)).where(
            QualityWatch.plant_id == batch.plant_id,
            QualityWatch.line == batch.line,
            QualityWatch.characteristic_code == code,
            QualityWatch.status == WatchStatus.OPEN,
        )
    )
    if open_already is not None:
        return None
    supervisor = await session.scalar(
        select(Line.supervisor_id).where(Line.plant_id == batch.plant_id, Line.code == batch.line)
    )
    watch = QualityWatch(
        plant_id=batch.plant_id,
        number=await next_number(session, "QW"),
        line=batch.line,
        characteristic_code=code,
        batch_id=batch.id,
        inspection_id=inspection.id,
        rules=rules,
        assignee_id=supervisor,
    )
    session.add(watch)
    await session.flush()
    emit(
        session,
        "quality_watch.opened",
        subject_type="quality_watch",
        subject_id=watch.id,
        actor=actor,
        at=inspection.received_at,
        payload={"number": watch.number, "line": batch.line, "characteristic": code, "rules": rules},
    )
    return watch
