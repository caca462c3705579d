"""`scripts/serve` on an empty data directory: migrates, loads the demo, serves, and the README's logins work."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support import DEMO_PASSWORD, ROOT, free_port, wait_for_health

DEMO_USERS = [
    "wang.lei",
    "jana.novak",
    "lena.fischer",
    "marcus.reed",
    "lucia.martin",
    "kenji.sato",
    "diego.ruiz",
    "qa.manager",
    "admin",
]
# Step 12 of the demo erases the workshop contact at D+40, which closes its portal login.
ERASED_USERS = ["gil.workshop"]


@pytest.mark.slow
def test_scripts_serve_runs_the_demo_and_its_logins_work(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "serve"), "--port", str(port), "--data-dir", str(tmp_path / "var")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, process, log_path, timeout_s=300)
        printed = log_path.read_text()
        assert f"http://127.0.0.1:{port}/" in printed
        tokens = {}
        for username in DEMO_USERS:
            assert username in printed
            response = httpx.post(f"{base}/api/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD})
            assert response.status_code == 200, (username, response.text)
            tokens[username] = response.json()["access_token"]
        for username in ERASED_USERS:
            assert username in printed
            response = httpx.post(f"{base}/api/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD})
            assert response.status_code == 401, (username, response.text)
        # The world opens after the loop has run: Lena sees her VIP's case about NC-0142.
        lena = {"Authorization": f"Bearer {tokens['lena.fischer']}"}
        cases = httpx.get(f"{base}/api/v1/cases", headers=lena).json()["items"]
        assert [case["number"] for case in cases] == ["CS-1001"]
        assert (tmp_path / "var" / "loopline.db").exists()
        health = httpx.get(f"{base}/api/v1/health").json()
        assert health["database"]["dialect"] == "sqlite"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
