/**
 * The photo queue: photos travel by content hash, apart from the outbox.
 *
 * `preparePhoto` makes what is stored and sent: at most 2048 px on the long edge, turned
 * upright from its EXIF orientation, re-encoded as JPEG — which drops EXIF and GPS with
 * the rest of the metadata — and hashed. Records reference the hash, so a record syncs
 * before its photos and the server links them whichever arrives first; a slow or refused
 * photo never holds back the mutations queued behind it.
 *
 * Per photo (as sync/loopline_sync/photos.py): `POST /blobs` (nothing is sent when the
 * server has the bytes already), then 1 MiB chunks by `PATCH`, each with its checksum,
 * from the offset the server holds. After a failure — or a reload, or a tablet that slept
 * — the upload resumes from the server's offset, so a dropped connection costs at most the
 * chunk that was on its way. A photo the server refuses leaves the queue with its reason.
 */
import { Attempts } from './backoff.js';
import { write } from './db.js';
import { SyncError } from './errors.js';

const BLOBS_PATH = '/api/v1/blobs';
const CHUNK_SIZE = 1024 * 1024;
const MAX_EDGE_PX = 2048;
const JPEG_QUALITY = 0.85;
// Answers that no resend can change: the photo leaves the queue with the server's reason.
const REFUSED_FOR_GOOD = new Set([400, 413, 415, 422]);
// An upload's next step: the offset to send a chunk from, START (announce it) or DONE.
const START = null;
const DONE = -1;

function toHex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function checksum(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return `sha256 ${btoa(String.fromCharCode(...digest))}`;
}

/** An offset from a header or an error's details; START (announce again) when it is not one. */
function offsetOrStart(value) {
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return Number.isInteger(number) && number >= 0 ? number : START;
}

export async function preparePhoto(fileOrBlob) {
  let bitmap;
  try {
    // 'from-image' and never 'none': older engines read 'none' as "apply EXIF" anyway.
    bitmap = await createImageBitmap(fileOrBlob, { imageOrientation: 'from-image' });
  } catch {
    throw new SyncError('not_an_image', 'This file is not an image the browser can read.');
  }
  const scale = Math.min(1, MAX_EDGE_PX / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext('2d').drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: JPEG_QUALITY });
  const sha256 = toHex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  return { sha256, blob, size: blob.size, mime: 'image/jpeg' };
}

/** Queue a prepared photo; the same bytes queued twice stay one entry. */
export async function queuePhoto(db, photo) {
  await write(db, ['photos'], async (tx) => {
    const photos = tx.objectStore('photos');
    if (!(await photos.get(photo.sha256))) await photos.put({ ...photo, state: 'pending', addedAt: Date.now() });
  });
}

export function pendingPhotoCount(db) {
  return db.countFromIndex('photos', 'state', 'pending');
}

/** The bytes of a photo still on this device (queued or refused), or null. */
export async function photoBlob(db, sha256) {
  return (await db.get('photos', sha256))?.blob ?? null;
}

export class PhotoUploader {
  /** `exchange`: this queue's own (its backoff waits must not hold up the outbox's). */
  constructor({ db, exchange, onSettled }) {
    Object.assign(this, { db, exchange, onSettled });
  }

  /** Upload the queued photos, oldest first. */
  async uploadAll() {
    const pending = await this.db.getAllFromIndex('photos', 'state', 'pending');
    pending.sort((a, b) => a.addedAt - b.addedAt);
    for (const photo of pending) await this.#upload(photo);
  }

  async #upload(photo) {
    const attempts = new Attempts();
    let step = START;
    while (step !== DONE) {
      step = step === START ? await this.#start(photo, attempts) : await this.#sendChunk(photo, step, attempts);
    }
  }

  async #start(photo, attempts) {
    const announcement = { sha256: photo.sha256, size: photo.size, mime: photo.mime };
    const reply = await this.exchange.call(attempts, 'POST', BLOBS_PATH, { json: announcement });
    if (!reply) return START;
    if (reply.status !== 200 && reply.status !== 201) return this.#refused(photo, reply, attempts);
    const status = reply.json();
    if (typeof status?.state !== 'string') {
      await this.exchange.fail(attempts, new SyncError('not_protocol_json', 'POST /blobs answered without a status'));
      return START;
    }
    this.exchange.report({ online: true });
    if (status.state === 'complete') return this.#settle(photo, { state: 'uploaded' });
    if (!Number.isInteger(status.offset) || status.offset < 0 || status.offset >= photo.size) {
      await this.exchange.fail(attempts, new SyncError('bad_offset', `the server holds ${status.offset} bytes`));
      return START;
    }
    return status.offset;
  }

  async #sendChunk(photo, offset, attempts) {
    const bytes = new Uint8Array(await photo.blob.slice(offset, offset + CHUNK_SIZE).arrayBuffer());
    const headers = {
      'Content-Type': 'application/offset+octet-stream',
      'Upload-Offset': String(offset),
      'Upload-Checksum': await checksum(bytes),
    };
    const path = `${BLOBS_PATH}/${photo.sha256}`;
    const reply = await this.exchange.call(attempts, 'PATCH', path, { body: bytes, headers });
    if (!reply) return this.#resume(photo, attempts);
    if (reply.status === 204) {
      attempts.progressed();
      if (reply.headers.get('blob-state') === 'complete') return this.#settle(photo, { state: 'uploaded' });
      return offsetOrStart(reply.headers.get('upload-offset'));
    }
    const { code, details } = reply.error();
    if (reply.status === 460) {
      await this.exchange.fail(attempts, new SyncError(code ?? 'checksum_mismatch', 'the chunk arrived corrupted'));
      return offset;
    }
    if (reply.status === 409) {
      // Someone (maybe our own lost request) moved the upload on: continue from there.
      await this.exchange.fail(attempts, new SyncError(code ?? 'offset_mismatch', 'the upload is elsewhere'));
      if (details.state === 'complete') return this.#settle(photo, { state: 'uploaded' });
      return offsetOrStart(details.offset);
    }
    if (reply.status === 404) {
      await this.exchange.fail(attempts, new SyncError(code ?? 'not_found', 'the server forgot the upload'));
      return START;
    }
    return this.#refused(photo, reply, attempts);
  }

  /** After a failure: the offset the server holds (`HEAD`), or START when it cannot say. */
  async #resume(photo, attempts) {
    const reply = await this.exchange.call(attempts, 'HEAD', `${BLOBS_PATH}/${photo.sha256}`);
    if (reply?.status !== 200) return START;
    const state = reply.headers.get('blob-state');
    if (state === 'complete') return this.#settle(photo, { state: 'uploaded' });
    const offset = offsetOrStart(reply.headers.get('upload-offset'));
    // A rejected upload (or an odd answer) is explained by announcing it again.
    return state === 'partial' && offset !== START && offset < photo.size ? offset : START;
  }

  async #refused(photo, reply, attempts) {
    const { code, details, message } = reply.error();
    if (!REFUSED_FOR_GOOD.has(reply.status)) {
      await this.exchange.fail(attempts, new SyncError(code ?? `http_${reply.status}`, `blob upload answered ${reply.status}`));
      return START;
    }
    return this.#settle(photo, {
      state: 'rejected',
      reason: {
        code: details.reason_code ?? code ?? `http_${reply.status}`,
        message: details.reason ?? (message || `the server answered ${reply.status}`),
      },
    });
  }

  /**
   * The photo leaves the queue. Uploaded bytes are deleted here (the server serves them
   * now); a refused photo stays, with the server's reason, for the uploader to see.
   */
  async #settle(photo, outcome) {
    await write(this.db, ['photos'], (tx) =>
      outcome.state === 'uploaded'
        ? tx.objectStore('photos').delete(photo.sha256)
        : tx.objectStore('photos').put({ ...photo, ...outcome }),
    );
    this.onSettled();
    return DONE;
  }
}
