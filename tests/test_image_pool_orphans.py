"""A server killed outright takes its image workers with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from loopline.core.settings import Settings
from tests.blob_helpers import BLOBS, checksum, sha
from tests.photo_helpers import photo
from tests.support import DEMO_PASSWORD, free_port, wait_for_health

# Long enough for the kernel and the fork server to notice on a loaded machine; the test
# waits only as long as it takes, this bounds it.
ENDS_WITHIN_S = 60


def children_of() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            # The command name (field 2) may hold spaces and parentheses: the fields after it are fixed.
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    return children


def descendants(pid: int) -> set[int]:
    tree, found, todo = children_of(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    """Alive and not merely waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="reads the process tree from /proc")
def test_image_workers_end_when_the_server_is_killed(world_settings: Settings) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LOOPLINE_DATABASE_URL": world_settings.database_url,
        "LOOPLINE_SECRET_KEY": world_settings.secret_key,
    }
    log_path = world_settings.data_dir / f"server-{port}.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "loopline",
                "--data-dir",
                str(world_settings.data_dir),
                "serve",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, server, log_path)
        login = httpx.post(f"{base}/api/v1/auth/login", json={"username": "wang.lei", "password": DEMO_PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        # The pool starts with the first upload that completes.
        data = photo(3001)
        announced = httpx.post(
            f"{base}{BLOBS}", json={"sha256": sha(data), "size": len(data), "mime": "image/jpeg"}, headers=headers
        )
        assert announced.status_code == 201, announced.text
        sent = httpx.patch(
            f"{base}{BLOBS}/{sha(data)}",
            content=data,
            headers={**headers, "Upload-Offset": "0", "Upload-Checksum": checksum(data)},
            timeout=60,
        )
        assert sent.headers["blob-state"] == "complete", sent.text
        pool = descendants(server.pid)
        # The fork server and its two workers at least.
        assert len(pool) >= 3, pool
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()

    deadline = time.monotonic() + ENDS_WITHIN_S
    while {pid for pid in pool if running(pid)} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert {pid for pid in pool if running(pid)} == set()
