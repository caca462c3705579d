// Read-model reads for views. A screen names the entities it shows; the hook reads them from
// the device's read model and reads again whenever a `changes` event (a pull page or a live
// frame) touches one of them, so every open screen follows the server without a reload.
import { useEffect, useState } from 'preact/hooks';
import { client } from './client.js';

export function useRecords(entities) {
  const key = entities.join(',');
  const [state, setState] = useState({ ready: false, data: {} });
  useEffect(() => {
    let current = true;
    const load = async () => {
      const lists = await Promise.all(entities.map((entity) => client.all(entity)));
      if (current) setState({ ready: true, data: Object.fromEntries(entities.map((entity, i) => [entity, lists[i]])) });
    };
    const onChanges = ({ detail }) => {
      if (detail?.reset || detail?.entities?.some((entity) => entities.includes(entity))) load();
    };
    load();
    client.addEventListener('changes', onChanges);
    return () => {
      current = false;
      client.removeEventListener('changes', onChanges);
    };
  }, [key]);
  return state;
}

// The mutations still queued on this device (oldest first), read again whenever the sync
// status changes: what a screen shows as "not sent yet" beside the server's rows.
export function useQueued(name) {
  const [entries, setEntries] = useState([]);
  useEffect(() => {
    let current = true;
    const load = async () => {
      const queued = await client.queued();
      if (current) setEntries(queued.filter((entry) => entry.name === name));
    };
    load();
    client.addEventListener('status', load);
    return () => {
      current = false;
      client.removeEventListener('status', load);
    };
  }, [name]);
  return entries;
}

export const byId = (rows = []) => new Map(rows.map((row) => [row.id, row]));
