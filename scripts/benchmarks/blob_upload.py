"""Photo upload throughput and the server's event-loop lag meanwhile (prints JSON).

A real server (`loopline serve` in its own process, as in production) gets 20 photos at
once from 20 photo queues (`loopline_sync.photos.PhotoQueue`, as 20 devices would send
them) over loopback. Reported:

- end-to-end throughput: photo bytes over the time from the first request to the last
  answer, which includes every chunk's fsync, the whole-file SHA-256 check and the image
  pipeline (validation, WebP and JPEG copies) in the server's worker pool;
- round-trip times of ordinary chunks and of final chunks (those wait for the pipeline);
- the server's event-loop lag while all this runs, measured inside the server by its
  probe (`LOOPLINE_LOOP_LAG_PROBE=1`, read at `GET /api/v1/admin/debug/loop-lag`; the
  window is reset just before the uploads start). Target (issue 4): p99 under 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from loopline.core import migrate  # noqa: E402
from loopline.core.settings import Settings  # noqa: E402
from loopline_sync.auth import Auth  # noqa: E402
from loopline_sync.photos import PhotoQueue  # noqa: E402
from loopline_sync.store import LocalStore  # noqa: E402
from loopline_sync.transport import HttpTransport, TransportResponse  # noqa: E402
from tests.photo_helpers import photo  # noqa: E402
from tests.support import DEMO_PASSWORD, GENEROUS_LIMITS, load_demo_into, running_server  # noqa: E402

LAG_PATH = "/api/v1/admin/debug/loop-lag"
TARGET_P99_MS = 20.0


@dataclass
class Exchange:
    final: bool
    seconds: float


class TimedTransport:
    """Times every PATCH; the one that completes a photo (its answer says so) is a final chunk."""

    def __init__(self, inner: HttpTransport, exchanges: list[Exchange]) -> None:
        self.inner = inner
        self.exchanges = exchanges

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        return await self.inner.post(path, body, headers)

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        started = time.perf_counter()
        response = await self.inner.request(method, path, body, headers)
        if method == "PATCH":
            final = response.headers.get("blob-state") == "complete"
            self.exchanges.append(Exchange(final, time.perf_counter() - started))
        return response


def percentiles_ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"p50": at(0.5), "p95": at(0.95), "max": at(1.0)}


async def upload_all(base: str, files: list[Path], tmp: Path) -> dict[str, Any]:
    exchanges: list[Exchange] = []
    async with httpx.AsyncClient(timeout=120) as client:
        admin = (
            await client.post(f"{base}/api/v1/auth/login", json={"username": "admin", "password": DEMO_PASSWORD})
        ).json()
        admin_headers = {"Authorization": f"Bearer {admin['access_token']}"}
        http = HttpTransport(base, client=client)
        auth = Auth(http, "wang.lei", DEMO_PASSWORD)
        queues = []
        for n, path in enumerate(files):
            store = LocalStore(tmp / f"device-{n}.db", synchronous="NORMAL")
            queue = PhotoQueue(store, TimedTransport(http, exchanges), auth, rng=random.Random(n))
            await queue.add(path, "image/jpeg")
            queues.append(queue)
        await auth.headers()  # signed in before the clock starts

        assert (await client.delete(f"{base}{LAG_PATH}", headers=admin_headers)).status_code == 204
        started = time.perf_counter()
        left = await asyncio.gather(*(queue.upload(max_attempts=5) for queue in queues))
        seconds = time.perf_counter() - started
        lag = (await client.get(f"{base}{LAG_PATH}", headers=admin_headers)).json()
        for queue in queues:
            queue.store.close()

    assert sum(left) == 0, f"{sum(left)} photos did not go up"
    uploaded = sum(queue.stats.uploaded for queue in queues)
    total = sum(path.stat().st_size for path in files)
    return {
        "photos": uploaded,
        "megabytes": round(total / 1e6, 1),
        "seconds": round(seconds, 3),
        "end_to_end_mb_per_s": round(total / 1e6 / seconds, 1),
        "chunk_round_trip_ms": percentiles_ms([e.seconds for e in exchanges if not e.final]),
        "final_chunk_round_trip_ms": percentiles_ms([e.seconds for e in exchanges if e.final]),
        "server_loop_lag_ms": {
            **{key: lag[key] for key in ("samples", "p50_ms", "p90_ms", "p99_ms", "max_ms")},
            "target_p99_ms": TARGET_P99_MS,
            "met": lag["p99_ms"] < TARGET_P99_MS,
        },
    }


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--width", type=int, default=2400, help="photo width in pixels (height is 3/4 of it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        settings = Settings.from_env(env={}, data_dir=tmp / "server", **GENEROUS_LIMITS)
        # Alembic runs its own event loop: migrate before ours starts.
        migrate.upgrade(settings)
        asyncio.run(load_demo_into(settings))
        files = []
        for n in range(args.photos):
            path = tmp / f"photo-{n}.jpg"
            path.write_bytes(photo(1000 + n, args.width, args.width * 3 // 4, quality=92))
            files.append(path)
        with running_server(settings, ("LOOPLINE_LOOP_LAG_PROBE", "1")) as base:
            report = asyncio.run(upload_all(base, files, tmp))
        report["image_workers"] = settings.image_workers
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
