"""The PWA's performance in Chromium on a phone, beside same-run baselines (prints JSON).

A real `loopline serve` on the full demo scenario (`loopline db upgrade`, `loopline demo
load`, production password hashing), and Debian's Chromium driven by Playwright with a
phone's viewport (390 x 844, touch). Every browser figure is measured at each CPU
throttling rate of `--rates` (CDP `Emulation.setCPUThrottlingRate`; 4 stands for a
mid-range tablet). Throttling slows the page's renderer (its JavaScript, layout, paint);
the browser process (IndexedDB, the network stack) and the service worker's thread run at
full speed, as they would on a device whose only slow part were its cores. Times are taken
inside the page (`performance.now()`), so no Playwright round trip is counted.

1. First sign-in: a fresh browser context opens `/`; from the form's `submit` event
   (pressing "Sign in" as wang.lei) until the batch list holds a row for every batch
   wang.lei's plant has (the argon2 sign-in, the initial sync into IndexedDB and the
   render). Baseline: the Python sync engine (`loopline_sync`) signing in and doing the
   same initial sync into its SQLite store, against the same server.
2. Warm start: once the service worker controls that context and the first page is
   closed, a new page's load, from navigation start until the batch list shows the same
   rows (the shell from the service worker's cache, the rows from IndexedDB). Baseline:
   the same shell page loaded with JavaScript off and no service worker, so from the
   server (its HTML and stylesheets): what a plain page costs here.
3. Offline mutations: on a synced, service-worker-controlled page, offline, `--mutations`
   `message.post`s into wang.lei's nonconformance thread, one `client.enqueue` after the
   other (the app's own client: `/app/<build>/app/state/client.js`); then online, until
   the outbox is empty (every mutation acknowledged), and until the engine is idle again
   (its pull of the same messages applied too). The server is then asked, through the
   REST API, for every message by id. Baseline: the Python engine queuing and pushing the
   same number of messages into the same thread.
4. Size: every served file of the app's own code (`pwa/app/**`, JavaScript and CSS) as
   the build serves it, gzipped one by one and summed, and as one stream; the shell
   files and the vendored modules (the ones the service worker stores, and the dev tools
   it does not) apart. The server itself sends them uncompressed (`server_gzips` says so).

Targets: first sign-in < 3 s, warm start < 1 s (throttled), sync of 1,000 < 5 s, own
code < 100 KB gzipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright  # noqa: E402

from loopline.core.settings import Settings  # noqa: E402
from loopline.webapp.build import Build  # noqa: E402
from loopline_sync.auth import Auth  # noqa: E402
from loopline_sync.engine import SyncEngine  # noqa: E402
from loopline_sync.store import LocalStore  # noqa: E402
from loopline_sync.transport import HttpTransport  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.browser.web import DEVICES  # noqa: E402
from tests.browser.worlds import api_as, pulled  # noqa: E402
from tests.support import DEMO_PASSWORD, cli, running_server  # noqa: E402

USER = "wang.lei"
DEVICE = DEVICES["phone"]
TARGETS = {"first_sign_in_ms": 3000, "warm_start_ms": 1000, "sync_ms": 5000, "own_code_gzip_kb": 100}
# Bounded waits: a throttled page on a busy shared machine is slow, never this slow.
WAIT_MS = 180_000
GZIP_LEVEL = 6  # what servers commonly use (nginx, Caddy and zlib's default)

# Runs in every page before its own scripts: when the form is sent, when the shell first
# rendered, and when the batch list first held `want` rows (then the next frame).
PROBE = """(() => {
  const want = %(want)d;
  const b = (window.__bench = {});
  document.addEventListener('submit', () => { b.submitAt ??= performance.now(); }, true);
  const observer = new MutationObserver(() => {
    if (b.appAt === undefined && document.querySelector('#app > *')) b.appAt = performance.now();
    if (document.querySelectorAll('ul.rows a[href^="#/batches/"]').length >= want) {
      b.listAt = performance.now();
      observer.disconnect();
      requestAnimationFrame(() => { b.listFrameAt = performance.now(); });
    }
  });
  observer.observe(document, { childList: true, subtree: true });
})();"""

ENQUEUE = """async ([build, threadId, count, tag]) => {
  const { client, newId } = await import(`/app/${build}/app/state/client.js`);
  const sync = (window.__benchSync = {});
  addEventListener('online', () => { sync.onlineAt ??= performance.now(); });
  client.addEventListener('status', ({ detail }) => {
    if (sync.onlineAt === undefined) return;
    if (detail.outboxCount === 0) sync.emptyAt ??= performance.now();
    if (sync.emptyAt !== undefined && !detail.syncing) sync.idleAt ??= performance.now();
  });
  const ids = [];
  const started = performance.now();
  for (let n = 0; n < count; n += 1) {
    const id = newId();
    await client.enqueue('message.post', { id, thread_id: threadId, body: `${tag} reading ${n}: 23.4 µm` });
    ids.push(id);
  }
  return { ids, queueMs: performance.now() - started, outbox: client.status.outboxCount };
}"""


def progress(text: str) -> None:
    print(f"[pwa] {text}", file=sys.stderr, flush=True)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
        "runs": [round(v, 1) for v in values],
    }


@contextlib.contextmanager
def demo_server(data_dir: Path) -> Iterator[str]:
    """`loopline db upgrade`, `loopline demo load` and `loopline serve`, as an operator runs them."""
    # Production password hashing (the sign-in pays for it); only the login rate limits are
    # raised, since the bench signs the same user in many times from one address.
    settings = Settings.from_env(
        env={}, data_dir=data_dir, login_attempts_per_user=10_000, login_attempts_per_address=10_000
    )
    cli(settings, "db", "upgrade")
    cli(settings, "demo", "load")
    with running_server(settings) as base:
        yield base


# -- the Python engine's baselines ----------------------------------------------------------


async def python_initial_sync(base: str, path: Path) -> dict[str, float]:
    transport = HttpTransport(base)
    try:
        engine = SyncEngine(LocalStore(path), transport, Auth(transport, USER, DEMO_PASSWORD))
        started = time.perf_counter()
        await engine.auth.headers()
        signed_in = time.perf_counter()
        await engine.pull(max_attempts=3)
        done = time.perf_counter()
        engine.store.close()
    finally:
        await transport.aclose()
    return {"sign_in_ms": (signed_in - started) * 1000, "pull_ms": (done - signed_in) * 1000}


async def python_push(base: str, path: Path, thread_id: str, count: int, tag: str) -> dict[str, float]:
    transport = HttpTransport(base)
    try:
        engine = SyncEngine(LocalStore(path), transport, Auth(transport, USER, DEMO_PASSWORD))
        await engine.auth.headers()
        await engine.pull(max_attempts=3)  # a synced device, as the browser's is
        started = time.perf_counter()
        for n in range(count):
            await engine.enqueue(
                "message.post", {"id": str(uuid.uuid4()), "thread_id": thread_id, "body": f"{tag} reading {n}"}
            )
        queued = time.perf_counter()
        await engine.push(max_attempts=3)
        pushed = time.perf_counter()
        await engine.pull(max_attempts=3)
        pulled_back = time.perf_counter()
        left = engine.store.outbox_size()
        engine.store.close()
    finally:
        await transport.aclose()
    assert left == 0, f"the Python engine left {left} mutations unsent"
    return {
        "queue_ms": (queued - started) * 1000,
        "sync_ms": (pushed - queued) * 1000,
        "sync_and_pull_ms": (pulled_back - queued) * 1000,
    }


# -- the browser ----------------------------------------------------------------------------


class Bench:
    def __init__(self, browser: Browser, base: str, tmp: Path, worker: ThreadPoolExecutor) -> None:
        self.browser = browser
        self.base = base
        self.tmp = tmp
        self.worker = worker
        held = pulled(base, USER)
        self.batches = len(held["batch"])
        self.thread_id = next(t["id"] for t in held["thread"] if t["subject_type"] == "nonconformance")
        self.build = httpx.get(base + "/", timeout=30).headers["X-Loopline-Build"]

    def in_worker(self, make: Callable[[], Any]) -> Any:
        """Playwright's sync API keeps an event loop in this thread: asyncio runs on another."""
        return self.worker.submit(lambda: asyncio.run(make())).result()

    def context(self, **options: Any) -> BrowserContext:
        context = self.browser.new_context(
            base_url=self.base, locale="en", service_workers="allow", **DEVICE, **options
        )
        context.add_init_script(PROBE % {"want": self.batches})
        context.set_default_timeout(WAIT_MS)
        return context

    @staticmethod
    def page(context: BrowserContext, rate: float) -> Page:
        page = context.new_page()
        if rate != 1:
            context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": rate})
        return page

    def first_sign_in(self, rate: float) -> tuple[BrowserContext, dict[str, float]]:
        context = self.context()
        page = self.page(context, rate)
        page.goto("/")
        page.locator("#username").fill(USER)
        page.locator("#password").fill(DEMO_PASSWORD)
        cold_shell = page.evaluate("window.__bench.appAt")
        page.locator("form button[type=submit]").click()
        page.wait_for_function("window.__bench.listFrameAt !== undefined", timeout=WAIT_MS)
        marks = page.evaluate("window.__bench")
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=WAIT_MS)
        page.close()
        return context, {"ms": marks["listFrameAt"] - marks["submitAt"], "cold_shell_ms": cold_shell}

    def warm_start(self, context: BrowserContext, rate: float) -> dict[str, float]:
        page = self.page(context, rate)
        page.goto("/")
        page.wait_for_function("window.__bench.listFrameAt !== undefined", timeout=WAIT_MS)
        marks = page.evaluate("window.__bench")
        controlled = page.evaluate("navigator.serviceWorker.controller !== null")
        document = page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd")
        page.close()
        assert controlled, "the warm page was not controlled by the service worker"
        return {"ms": marks["listFrameAt"], "shell_ms": marks["appAt"], "document_ms": document}

    def static_load(self, rate: float) -> float:
        """The shell page as plain HTML and CSS from the server: no JavaScript, no service worker."""
        context = self.browser.new_context(
            base_url=self.base, locale="en", java_script_enabled=False, service_workers="block", **DEVICE
        )
        try:
            page = self.page(context, rate)
            page.goto("/", wait_until="load")
            load_end: float = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
        finally:
            context.close()
        return load_end

    def offline_mutations(self, rate: float, count: int, tag: str) -> dict[str, Any]:
        context = self.context()
        try:
            page = self.page(context, 1)
            page.goto("/")
            page.locator("#username").fill(USER)
            page.locator("#password").fill(DEMO_PASSWORD)
            page.locator("form button[type=submit]").click()
            page.wait_for_function("window.__bench.listFrameAt !== undefined", timeout=WAIT_MS)
            page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=WAIT_MS)
            page.close()
            page = self.page(context, rate)  # a fresh page under the service worker, leading the sync
            page.goto("/")
            page.wait_for_function("window.__bench.listFrameAt !== undefined", timeout=WAIT_MS)
            context.set_offline(True)
            queued = page.evaluate(ENQUEUE, [self.build, self.thread_id, count, tag])
            assert queued["outbox"] == count, f"{queued['outbox']} of {count} queued"
            context.set_offline(False)
            # A real 'online' event, if the emulation sends one first, starts the clock.
            page.evaluate("dispatchEvent(new Event('online'))")
            page.wait_for_function("window.__benchSync.idleAt !== undefined", timeout=WAIT_MS)
            marks = page.evaluate("window.__benchSync")
        finally:
            context.close()
        missing = self.missing_messages(set(queued["ids"]))
        assert not missing, f"the server lacks {len(missing)} of the {count} messages"
        return {
            "queue_ms": queued["queueMs"],
            "sync_ms": marks["emptyAt"] - marks["onlineAt"],
            "sync_and_pull_ms": marks["idleAt"] - marks["onlineAt"],
        }

    def missing_messages(self, ids: set[str]) -> set[str]:
        """Which of `ids` the server does not hold: its thread's messages, newest first, through the REST API."""
        left = set(ids)
        with api_as(self.base, USER) as http:
            before = None
            while left:
                params: dict[str, Any] = {"limit": 200, **({"before": before} if before else {})}
                page = http.get(f"/threads/{self.thread_id}/messages", params=params).json()
                left -= {message["id"] for message in page["items"]}
                before = page["next_before"]
                if before is None:
                    break
        return left


# -- size -----------------------------------------------------------------------------------


def gzip_size(body: bytes) -> int:
    return len(gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0))


def sizes(files: dict[str, bytes]) -> dict[str, Any]:
    per_file = {name: gzip_size(body) for name, body in files.items()}
    return {
        "files": len(files),
        "raw_kb": round(sum(len(body) for body in files.values()) / 1024, 1),
        "gzip_per_file_kb": round(sum(per_file.values()) / 1024, 1),
        "gzip_one_stream_kb": round(gzip_size(b"".join(files[name] for name in sorted(files))) / 1024, 1),
        "largest_gzip_kb": {
            name: round(size / 1024, 1) for name, size in sorted(per_file.items(), key=lambda kv: -kv[1])[:5]
        },
    }


def code_size(base: str) -> dict[str, Any]:
    build = Build.load(ROOT / "pwa")
    code = (".js", ".mjs", ".css")
    own = {path: a.body for path, a in build.assets.items() if path.startswith("app/") and path.endswith(code)}
    vendored = {path: a.body for path, a in build.assets.items() if path.startswith("vendor/")}
    precached = set(build.precache)
    answer = httpx.get(f"{base}/app/{build.id}/app/main.js", headers={"Accept-Encoding": "gzip"}, timeout=30)
    return {
        "own_code": sizes(own),
        "shell": sizes({"index.html": build.index_html, "sw.js": build.service_worker}),
        "vendor_precached": sizes({p: b for p, b in vendored.items() if p in precached}),
        "vendor_not_precached": sizes({p: b for p, b in vendored.items() if p not in precached}),
        "gzip_level": GZIP_LEVEL,
        "server_gzips": answer.headers.get("content-encoding") == "gzip",
    }


# -- the run --------------------------------------------------------------------------------


def measure(browser: Browser, base: str, tmp: Path, reps: int, mutations: int, rates: list[float]) -> dict[str, Any]:
    with ThreadPoolExecutor(1) as worker:
        bench = Bench(browser, base, tmp, worker)
        runs: dict[str, dict[str, list[float]]] = {
            f"{rate:g}x": {key: [] for key in ("first", "cold_shell", "warm", "warm_shell", "warm_doc", "static")}
            for rate in rates
        }
        py_sync: list[dict[str, float]] = []
        # First sign-ins and warm starts first: the mutations below grow what a first sync pulls.
        for rep in range(reps):
            py_sync.append(bench.in_worker(lambda: python_initial_sync(base, tmp / f"py-sync-{uuid.uuid4()}.db")))
            for rate in rates:
                got = runs[f"{rate:g}x"]
                context, first = bench.first_sign_in(rate)
                try:
                    warm = bench.warm_start(context, rate)
                finally:
                    context.close()
                got["first"].append(first["ms"])
                got["cold_shell"].append(first["cold_shell_ms"])
                got["warm"].append(warm["ms"])
                got["warm_shell"].append(warm["shell_ms"])
                got["warm_doc"].append(warm["document_ms"])
                got["static"].append(bench.static_load(rate))
                progress(f"rep {rep} at {rate:g}x: first sign-in {first['ms']:.0f} ms, warm start {warm['ms']:.0f} ms")
        outbox: dict[str, list[dict[str, float]]] = {f"{rate:g}x": [] for rate in rates}
        py_push: list[dict[str, float]] = []
        for rep in range(reps):
            for rate in rates:
                result = bench.offline_mutations(rate, mutations, f"bench {rep} {rate:g}x")
                outbox[f"{rate:g}x"].append(result)
                progress(
                    f"rep {rep} at {rate:g}x: queued {result['queue_ms']:.0f} ms, synced {result['sync_ms']:.0f} ms"
                )
            push = functools.partial(
                python_push, base, tmp / f"py-push-{rep}.db", bench.thread_id, mutations, f"python {rep}"
            )
            py_push.append(bench.in_worker(push))

    def column(rows: list[dict[str, float]], key: str) -> dict[str, Any]:
        return summary([row[key] for row in rows])

    return {
        "batches_shown": bench.batches,
        "first_sign_in": {
            "target_ms": TARGETS["first_sign_in_ms"],
            **{
                rate: {
                    "to_batch_list_ms": summary(got["first"]),
                    "met": max(got["first"]) < TARGETS["first_sign_in_ms"],
                    "cold_shell_to_sign_in_form_ms": summary(got["cold_shell"]),
                }
                for rate, got in runs.items()
            },
            "baseline_python_engine": {
                "sign_in_ms": column(py_sync, "sign_in_ms"),
                "initial_sync_ms": column(py_sync, "pull_ms"),
            },
        },
        "warm_start": {
            "target_ms": TARGETS["warm_start_ms"],
            **{
                rate: {
                    "to_batch_list_ms": summary(got["warm"]),
                    "met": max(got["warm"]) < TARGETS["warm_start_ms"],
                    "shell_rendered_ms": summary(got["warm_shell"]),
                    "document_from_service_worker_ms": summary(got["warm_doc"]),
                    "baseline_static_page_from_server_ms": summary(got["static"]),
                }
                for rate, got in runs.items()
            },
        },
        "offline_mutations": {
            "mutations": mutations,
            "name": "message.post",
            "target_sync_ms": TARGETS["sync_ms"],
            **{
                rate: {
                    "queue_ms": column(rows, "queue_ms"),
                    "sync_ms": column(rows, "sync_ms"),
                    "met": max(row["sync_ms"] for row in rows) < TARGETS["sync_ms"],
                    "sync_and_pull_ms": column(rows, "sync_and_pull_ms"),
                }
                for rate, rows in outbox.items()
            },
            "baseline_python_engine": {
                "queue_ms": column(py_push, "queue_ms"),
                "sync_ms": column(py_push, "sync_ms"),
                "sync_and_pull_ms": column(py_push, "sync_and_pull_ms"),
            },
        },
    }


def run(
    *, reps: int = 3, mutations: int = 1000, rates: list[float] | None = None, keep: Path | None = None
) -> dict[str, Any]:
    """The whole benchmark; returns the report (the smoke test calls this with tiny sizes)."""
    rates = rates or [1, 4]
    with contextlib.ExitStack() as stack:
        tmp = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="loopline-pwa-")))
        base = stack.enter_context(demo_server(tmp / "server"))
        load_before = os.getloadavg()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                report = {
                    "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "chromium": browser.version},
                    "device": {**DEVICE["viewport"], "cpu_throttling_rates": rates},
                    "repetitions": reps,
                    **measure(browser, base, tmp, reps, mutations, rates),
                }
            finally:
                browser.close()
        size = code_size(base)
    size["met"] = size["own_code"]["gzip_per_file_kb"] < TARGETS["own_code_gzip_kb"]
    size["target_kb"] = TARGETS["own_code_gzip_kb"]
    report["machine"]["load_average_1m"] = {"start": load_before[0], "end": os.getloadavg()[0]}
    report["code_size"] = size
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every measurement")
    parser.add_argument("--mutations", type=int, default=1000)
    parser.add_argument("--rates", type=float, nargs="+", default=[1, 4], help="CPU throttling rates")
    parser.add_argument("--keep", type=Path, help="an empty directory for the database and server log, kept")
    args = parser.parse_args()
    print(json.dumps(run(reps=args.reps, mutations=args.mutations, rates=args.rates, keep=args.keep), indent=2))


if __name__ == "__main__":
    main()
