"""Building blocks for tests: fresh databases on either dialect, apps, servers, logins."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from loopline.core import migrate
from loopline.core.db import Database
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.demo.loader import load_master_data

ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get("LOOPLINE_TEST_DATABASE_URL", "")
DEMO_PASSWORD = "loopline-demo"
# Shared test worlds sign in many times from one address; the rate-limit test builds its own.
GENEROUS_LIMITS = {
    "login_attempts_per_user": 10_000,
    "login_attempts_per_address": 10_000,
    # Cheap password hashes: the suite signs in hundreds of times; the cost is a setting.
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 1024,
}


def _admin_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def admin_sql(admin_url: str, sql: str) -> None:
    connection = await asyncpg.connect(_admin_dsn(admin_url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@dataclass
class FreshDatabase:
    """A new, migrated database: a SQLite file, or a PostgreSQL database beside the test one."""

    settings: Settings
    _drop: str | None = None
    _server_url: str = ""

    @classmethod
    def create(cls, data_dir: Path, server_url: str = TEST_DATABASE_URL, /, **settings: Any) -> FreshDatabase:
        """On `server_url`'s PostgreSQL server when given (the suite's by default), else SQLite."""
        if not server_url:
            fresh = cls(Settings.from_env(env={}, data_dir=data_dir, **settings))
        else:
            name = f"loopline_t_{uuid.uuid4().hex[:12]}"
            asyncio.run(admin_sql(server_url, f'CREATE DATABASE "{name}"'))
            url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
            fresh = cls(Settings.from_env(env={}, data_dir=data_dir, database_url=url, **settings), name, server_url)
        migrate.upgrade(fresh.settings)
        return fresh

    def drop(self) -> None:
        if self._drop:
            asyncio.run(admin_sql(self._server_url, f'DROP DATABASE IF EXISTS "{self._drop}" WITH (FORCE)'))


Loader = Callable[[Runtime], Awaitable[None]]


async def load_demo_into(settings: Settings, loader: Loader = load_master_data) -> None:
    runtime = Runtime(settings=settings, db=Database.open(settings))
    try:
        await loader(runtime)
    finally:
        await runtime.db.close()


@contextlib.contextmanager
def demo_world(
    data_dir: Path, *, server_url: str = TEST_DATABASE_URL, loader: Loader = load_master_data
) -> Iterator[Settings]:
    """A fresh database holding the demo's master data (or what `loader` loads), dropped afterwards.

    Most tests play the loop themselves on the master data; `load_demo` plays the scenario too.
    """
    fresh = FreshDatabase.create(data_dir, server_url, **GENEROUS_LIMITS)
    try:
        asyncio.run(load_demo_into(fresh.settings, loader))
        yield fresh.settings
    finally:
        fresh.drop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the `loopline` command against `settings`' database, as an operator would."""
    env = {**os.environ, "LOOPLINE_DATABASE_URL": settings.database_url, "LOOPLINE_SECRET_KEY": settings.secret_key}
    return subprocess.run(
        [sys.executable, "-m", "loopline", "--data-dir", str(settings.data_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


@contextlib.contextmanager
def running_server(settings: Settings, *extra_env: tuple[str, str], port: int | None = None) -> Iterator[str]:
    """A real `loopline serve` process on `port` (a free one by default); yields its base URL.

    Its output goes to a file in the data directory (a pipe nobody reads would fill up
    and stall the server), and is shown if the server fails to start.
    """
    port = port or free_port()
    env = {
        **os.environ,
        "LOOPLINE_DATABASE_URL": settings.database_url,
        "LOOPLINE_SECRET_KEY": settings.secret_key,
        **dict(extra_env),
    }
    for name in ("login_attempts_per_user", "login_attempts_per_address"):
        env[f"LOOPLINE_{name.upper()}"] = str(getattr(settings, name))
    log_path = settings.data_dir / f"server-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "loopline", "--data-dir", str(settings.data_dir), "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, process, log_path)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for_health(base: str, process: subprocess.Popen[str], log_path: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{base} did not become healthy")
