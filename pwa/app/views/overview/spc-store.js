// The SPC charts' data, kept in memory and brought up to date BY ENTITY ID from each
// `changes` batch: a year of measurements is read once when the overview opens, then only
// the rows a batch names are read again, and only the charts those rows belong to are
// recomputed. A chart that did not change keeps its object, so its view skips re-rendering.
//
// A chart is one characteristic on one plant's line (the server's SPC window:
// loop/spc_watch.py): one subgroup per inspection, the newest WINDOW by capture time.
import { useEffect, useState } from 'preact/hooks';
import { client } from '../../state/client.js';
import { estimateLimits, mean } from './spc-math.js';

export const WINDOW = 100;
const ENTITIES = ['batch', 'characteristic', 'inspection', 'measurement', 'capability_snapshot'];
// Beyond this many ids in one batch (a first sync's pages), one full read is cheaper.
const FULL_READ_OVER = 2000;

const keyOf = (plantId, line, code) => `${plantId}|${line}|${code}`;
const byCapture = (a, b) => Date.parse(a.at) - Date.parse(b.at) || (a.inspectionId < b.inspectionId ? -1 : 1);
const newerSnapshot = (a, b) => (!b || a.created_at > b.created_at || (a.created_at === b.created_at && a.id > b.id) ? a : b);

class SpcIndex {
  constructor() {
    this.clear();
  }

  clear() {
    this.batches = new Map();
    this.characteristics = new Map(); // `${plan_id}|${code}` → row
    this.characteristicKeys = new Map(); // id → `${plan_id}|${code}` (to forget a deleted one)
    this.inspections = new Map();
    this.measurements = new Map(); // id → row
    this.byInspection = new Map(); // inspection id → Map(code → Map(measurement id → row))
    this.snapshots = new Map(); // id → row
    this.snapshotsByKey = new Map(); // chart key → Set(snapshot id)
    this.keysOfInspection = new Map(); // inspection id → Set(chart key)
    this.members = new Map(); // chart key → Set(inspection id)
    this.charts = new Map(); // chart key → chart
    this.dirty = new Set();
  }

  async loadAll() {
    const lists = await Promise.all(ENTITIES.map((entity) => client.all(entity)));
    this.clear();
    this.#apply(Object.fromEntries(ENTITIES.map((entity, i) => [entity, lists[i].map((row) => [row.id, row])])));
  }

  /** `ids`: entity → changed ids, as the `changes` event names them. */
  async update(ids) {
    const total = ENTITIES.reduce((sum, entity) => sum + (ids[entity]?.length ?? 0), 0);
    if (total > FULL_READ_OVER) return this.loadAll();
    const entries = await Promise.all(
      ENTITIES.map(async (entity) => {
        const wanted = [...new Set(ids[entity] ?? [])];
        const rows = await Promise.all(wanted.map((id) => client.get(entity, id)));
        return [entity, wanted.map((id, i) => [id, rows[i]])];
      }),
    );
    this.#apply(Object.fromEntries(entries));
  }

  /** `rows`: entity → [id, row or null (deleted)]. */
  #apply(rows) {
    const touched = new Set();
    const moved = new Set();
    for (const [id, row] of rows.batch ?? []) {
      const before = this.batches.get(id);
      // A batch's status changes often and moves no chart; a new batch, line or plant may.
      if (!before || !row || before.line !== row.line || before.plant_id !== row.plant_id) moved.add(id);
      row ? this.batches.set(id, row) : this.batches.delete(id);
    }
    for (const [id, row] of rows.characteristic ?? []) {
      const old = this.characteristicKeys.get(id);
      if (old) this.characteristics.delete(old);
      if (row) {
        const key = `${row.plan_id}|${row.code}`;
        this.characteristics.set(key, row);
        this.characteristicKeys.set(id, key);
      }
      const codes = new Set([old?.split('|')[1], row?.code]);
      for (const key of this.charts.keys()) if (codes.has(key.split('|')[2])) this.dirty.add(key);
    }
    for (const [id, row] of rows.inspection ?? []) {
      row ? this.inspections.set(id, row) : this.inspections.delete(id);
      touched.add(id);
    }
    for (const [id, row] of rows.measurement ?? []) {
      const old = this.measurements.get(id);
      if (old) this.byInspection.get(old.inspection_id)?.get(old.characteristic_code)?.delete(id);
      if (old) touched.add(old.inspection_id);
      if (!row) {
        this.measurements.delete(id);
        continue;
      }
      this.measurements.set(id, row);
      const codes = this.byInspection.get(row.inspection_id) ?? new Map();
      this.byInspection.set(row.inspection_id, codes);
      const samples = codes.get(row.characteristic_code) ?? new Map();
      codes.set(row.characteristic_code, samples);
      samples.set(id, row);
      touched.add(row.inspection_id);
    }
    for (const [id, row] of rows.capability_snapshot ?? []) {
      const old = this.snapshots.get(id);
      if (old) this.#snapshotsOf(old).delete(id);
      if (!row) {
        this.snapshots.delete(id);
        continue;
      }
      this.snapshots.set(id, row);
      this.#snapshotsOf(row).add(id);
    }
    if (moved.size) for (const [id, inspection] of this.inspections) if (moved.has(inspection.batch_id)) touched.add(id);
    for (const id of touched) this.#relink(id);
    for (const key of this.dirty) this.#build(key);
    this.dirty.clear();
  }

  /** The snapshot ids of the row's chart, which is marked for recomputing. */
  #snapshotsOf(row) {
    const key = keyOf(row.plant_id, row.line, row.characteristic_code);
    if (!this.snapshotsByKey.has(key)) this.snapshotsByKey.set(key, new Set());
    this.dirty.add(key);
    return this.snapshotsByKey.get(key);
  }

  /** Put an inspection's subgroups on the charts of its plant, line and characteristics. */
  #relink(inspectionId) {
    const old = this.keysOfInspection.get(inspectionId) ?? new Set();
    const now = new Set();
    const inspection = this.inspections.get(inspectionId);
    const batch = inspection && this.batches.get(inspection.batch_id);
    if (batch) {
      for (const [code, samples] of this.byInspection.get(inspectionId) ?? []) {
        if (samples.size) now.add(keyOf(batch.plant_id, batch.line, code));
      }
    }
    for (const key of old) if (!now.has(key)) this.members.get(key)?.delete(inspectionId);
    for (const key of now) {
      if (!this.members.has(key)) this.members.set(key, new Set());
      this.members.get(key).add(inspectionId);
    }
    for (const key of new Set([...old, ...now])) this.dirty.add(key);
    this.keysOfInspection.set(inspectionId, now);
  }

  #build(key) {
    const members = this.members.get(key);
    if (!members?.size) {
      this.charts.delete(key);
      return;
    }
    const [plantId, line, code] = key.split('|');
    const subgroups = [...members]
      .map((inspectionId) => {
        const inspection = this.inspections.get(inspectionId);
        const samples = [...this.byInspection.get(inspectionId).get(code).values()].sort((a, b) => a.sample_index - b.sample_index);
        const values = samples.map((row) => row.value);
        const signals = [...new Set(samples.flatMap((row) => row.spc_signals ?? []))].sort();
        return {
          inspectionId,
          // Inspections captured on a device may have no number: their lot names them then.
          number: inspection.number ?? this.batches.get(inspection.batch_id)?.lot_no ?? null,
          planId: inspection.plan_id,
          at: inspection.captured_at,
          values,
          mean: mean(values),
          outOfSpec: samples.some((row) => row.out_of_spec),
          signals,
        };
      })
      .sort(byCapture)
      .slice(-WINDOW);
    const newest = subgroups[subgroups.length - 1];
    // As the server does: limits from the window's subgroups of the newest subgroup's size.
    const size = newest.values.length;
    const limits = estimateLimits(subgroups.filter((s) => s.values.length === size).map((s) => s.values));
    let capability = null;
    for (const id of this.snapshotsByKey.get(key) ?? []) capability = newerSnapshot(this.snapshots.get(id), capability);
    this.charts.set(key, {
      key,
      plantId,
      line,
      code,
      characteristic: this.characteristics.get(`${newest.planId}|${code}`) ?? null,
      subgroups,
      limits,
      capability,
    });
  }

  /** Trouble first: capability below target, then run-rule signals; then by plant, line and code. */
  list() {
    const trouble = (chart) => (chart.capability?.meets_target === false ? 2 : 0) + (chart.subgroups.some((s) => s.signals.length) ? 1 : 0);
    return [...this.charts.values()].sort((a, b) => trouble(b) - trouble(a) || (a.key < b.key ? -1 : 1));
  }
}

/** `{ready, charts}`: every SPC chart, kept current by the read model's `changes` events. */
export function useSpcCharts() {
  const [state, setState] = useState({ ready: false, charts: [] });
  useEffect(() => {
    const index = new SpcIndex();
    let current = true;
    let queue = Promise.resolve();
    // One batch at a time, in arrival order: a later batch must not be overtaken by an earlier one.
    const run = (task) => {
      queue = queue
        .then(task)
        .then(() => current && setState({ ready: true, charts: index.list() }))
        .catch((error) => console.error('SPC charts', error));
    };
    run(() => index.loadAll());
    const onChanges = ({ detail }) => {
      if (detail?.reset) return run(() => index.loadAll());
      const ids = Object.fromEntries(ENTITIES.filter((entity) => detail?.ids?.[entity]?.length).map((entity) => [entity, detail.ids[entity]]));
      if (Object.keys(ids).length) run(() => index.update(ids));
    };
    client.addEventListener('changes', onChanges);
    return () => {
      current = false;
      client.removeEventListener('changes', onChanges);
    };
  }, []);
  return state;
}
