"""Helpers of the fan-out benchmark (`realtime_fanout.py`) that know nothing of Loopline.

- The raw baseline: a bare `websockets` broadcast server, run as its own process with
  `python scripts/benchmarks/fanout_support.py --port P`. A client joins a room with
  `{"join": "<room>"}` (answered `{"joined": "<room>"}`); a client's
  `{"post": "<room>", "body": "…"}` is sent as it is to every member of the room, the
  poster included, as Loopline's hub sends a message to every socket of the thread, the
  author's own too. One `websockets.broadcast` per post: no queue, no task, no await per
  recipient. It imports no Loopline code, so its memory is the protocol's and the
  interpreter's alone.
- Measuring: nearest-rank percentiles, a process's resident memory and CPU time and the
  whole machine's CPU time from `/proc`, and an event-loop lag probe for the load
  generator's own loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

READY_LINE = "raw-broadcast-server ready"
LAG_SLEEP_S = 0.005


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (uvicorn picks it then too), else asyncio's default."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def percentiles_ms(values_ns: Iterable[int]) -> dict[str, float | None]:
    """p50, p99 and max in milliseconds (nearest rank); None when there is nothing to rank."""
    ordered = sorted(values_ns)
    if not ordered:
        return {"p50": None, "p99": None, "max": None}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 2)

    return {"p50": at(0.5), "p99": at(0.99), "max": at(1.0)}


def rss_bytes(pid: int) -> int:
    """The process's resident set size (`VmRSS` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used, all its threads together."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may hold spaces: count fields after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy, all cores together (the `cpu` line of /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class LoopLagProbe:
    """How late this process's event loop wakes a task that sleeps 5 ms, sampled without pause."""

    def __init__(self) -> None:
        self.samples: list[tuple[int, int]] = []  # (perf_counter_ns at wake-up, lag in ns)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="generator-loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        sleep_ns = int(LAG_SLEEP_S * 1e9)
        while True:
            before = time.perf_counter_ns()
            await asyncio.sleep(LAG_SLEEP_S)
            now = time.perf_counter_ns()
            self.samples.append((now, max(0, now - before - sleep_ns)))

    def between(self, start_ns: int, end_ns: int) -> list[int]:
        return [lag for at, lag in self.samples if start_ns <= at <= end_ns]


async def serve_raw(port: int) -> None:
    rooms: dict[str, set[ServerConnection]] = defaultdict(set)

    async def handler(connection: ServerConnection) -> None:
        room: str | None = None
        try:
            async for message in connection:
                frame = orjson.loads(message)
                if "post" in frame:
                    broadcast(rooms[frame["post"]], message)
                elif "join" in frame and room is None:
                    room = str(frame["join"])
                    rooms[room].add(connection)
                    await connection.send(orjson.dumps({"joined": room}).decode())
        except ConnectionClosed:
            pass
        finally:
            if room is not None:
                rooms[room].discard(connection)

    # Pings as uvicorn sends them for Loopline (every 25 s, 35 s to answer); default compression.
    async with serve(handler, "127.0.0.1", port, ping_interval=25, ping_timeout=35, max_size=1 << 20) as server:
        print(READY_LINE, flush=True)
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="The raw websockets broadcast server of the fan-out benchmark.")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve_raw(args.port))


if __name__ == "__main__":
    main()
