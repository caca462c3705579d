"""Image work off the event loop: a small pool of worker processes runs the image pipeline.

Decoding and encoding a photo takes hundreds of milliseconds of CPU; in a process of its
own it never delays chat or sync traffic on the event loop, and a decoder that crashes
or is killed for its memory takes only a worker with it. The pool starts on the first
upload that completes and is shut down with the application. Workers come from a fork
server, so they never inherit the server's threads (database drivers, thread pools), and
they are started from a worker thread: launching processes takes tens of milliseconds
that the event loop must not spend.

A worker ends with the server: one killed outright (SIGKILL, the OOM killer) has no
chance to shut the pool down, and its workers would otherwise live on, each holding an
image library's memory. A worker cannot wait for its parent's death (PR_SET_PDEATHSIG):
its parent is the fork server, which by design lives as long as any of its children. So
each worker watches the server's process itself, through a pidfd on Linux (woken the
moment it ends) and by polling its pid elsewhere.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import ParamSpec, TypeVar

from loopline.media.images import (
    SIZES,
    ImageInfo,
    ImageLimits,
    ImageRejected,
    full_size_copy,
    jpeg_copy,
    process_image,
)

P = ParamSpec("P")
T = TypeVar("T")

# How often a watchdog without pidfds looks for the server: an orphan's lifetime, not a latency anyone waits on.
SERVER_CHECK_INTERVAL_S = 1.0


def derive_copies(original: Path, staging: Path, limits: ImageLimits) -> ImageInfo:
    """In a worker: validate the image, write its WebP copies and a JPEG of each.

    The JPEGs are for clients that do not take WebP; making them here keeps every request
    for a copy a plain file read. `ImageRejected` travels back to the server as raised.
    """
    info = process_image(original, staging, limits)
    for size in SIZES:
        (staging / f"{size}.jpg").write_bytes(jpeg_copy(staging / f"{size}.webp"))
    return info


def _started() -> None:
    """A no-op task: submitting one per worker makes the pool launch all its processes."""


def _end_with(server: int) -> None:
    """The pool's initializer, in each worker: exit when the server process ends."""
    threading.Thread(target=_exit_when_gone, args=(server,), name="server-watchdog", daemon=True).start()


def _exit_when_gone(server: int) -> None:
    if hasattr(os, "pidfd_open"):
        try:
            process = os.pidfd_open(server)
        except ProcessLookupError:
            os._exit(1)
        # A pidfd turns readable when its process ends.
        select.select([process], [], [])
    else:
        while _running(server):
            time.sleep(SERVER_CHECK_INTERVAL_S)
    os._exit(1)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        # Gone, or the pid now names another user's process (the server is the workers' own user).
        return False
    return True


class ImagePool:
    def __init__(self, workers: int, limits: ImageLimits | None = None) -> None:
        self.workers = max(1, workers)
        self.limits = limits or ImageLimits()
        self._executor: ProcessPoolExecutor | None = None
        self._starting = asyncio.Lock()

    async def _pool(self) -> ProcessPoolExecutor:
        async with self._starting:
            if self._executor is None:
                self._executor = await asyncio.to_thread(self._start)
            return self._executor

    def _start(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        # The fork server imports the pipeline (Pillow, the HEIF plugin) once; every worker inherits it.
        context.set_forkserver_preload([__name__])
        executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_end_with, initargs=(os.getpid(),))
        for started in [executor.submit(_started) for _ in range(self.workers)]:
            started.result()
        return executor

    async def derive(self, original: Path, staging: Path) -> ImageInfo:
        """The image's facts, with its copies written to `staging`; raises `ImageRejected` for bad input."""
        return await self._run(derive_copies, original, staging, self.limits)

    async def full_size(self, original: Path, staging: Path) -> None:
        """The full-size copy served in place of the original, written to `staging`."""
        await self._run(full_size_copy, original, staging, self.limits)

    async def _run(self, task: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        for _attempt in range(2):
            executor = await self._pool()
            try:
                return await loop.run_in_executor(executor, functools.partial(task, *args, **kwargs))
            except BrokenProcessPool:
                # A worker died, maybe over another upload's image: a fresh pool gives this one a second chance.
                self._abandon(executor)
        raise ImageRejected("image_crashed_decoder", "The photo crashed the image decoder.")

    def _abandon(self, executor: ProcessPoolExecutor) -> None:
        if self._executor is executor:
            self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
