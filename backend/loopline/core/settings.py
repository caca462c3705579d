"""Settings: the only module that reads the environment.

Every setting is a ``LOOPLINE_<NAME>`` environment variable with the default shown
here; ``Settings.from_env`` builds the object once and everything else receives it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any


def _data_dir_secret(data_dir: Path) -> str:
    """A signing key kept beside the data, so tokens survive a restart of `serve`."""
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./var")
    # Empty means the embedded default: SQLite in <data_dir>/loopline.db.
    database_url: str = ""
    secret_key: str = ""
    access_token_ttl_s: int = 15 * 60
    refresh_token_ttl_s: int = 30 * 24 * 3600
    # Login attempts allowed per window, separately per username and per client address.
    login_attempts_per_user: int = 10
    login_attempts_per_address: int = 50
    login_window_s: int = 15 * 60
    # Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For names the
    # client (the right-most address not in this list); empty: the header is ignored.
    trusted_proxies: str = ""
    # The largest request body the API reads, in bytes (413 beyond it); photo chunks and sync
    # pushes set their own limits.
    max_body_bytes: int = 1024 * 1024
    # SQLite `synchronous` setting; see README "Durability".
    sqlite_synchronous: str = "FULL"
    sqlite_busy_timeout_ms: int = 5000
    # argon2id cost for new password hashes (see people/passwords.py).
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 65536
    # Worker processes for image validation and copies (see media/pool.py).
    image_workers: int = 2
    # How often the running server marks never-arrived photos missing and expires uploads (0: never).
    blob_sweep_interval_s: int = 3600
    # How often the running server flags cases past their SLA due times (0: never; see `loopline cases sweep`).
    sla_sweep_interval_s: int = 60
    # How often the running server looks for domain events to deliver to webhook subscribers (0: never),
    # and how long one delivery may wait on the receiver before it counts as failed.
    webhook_interval_s: float = 2.0
    webhook_timeout_s: float = 5.0
    # Comma-separated `host` or `host:port` entries (IPv6 in brackets) that webhooks may reach even
    # though they are not public addresses (loopback, private, link-local, …); empty: public
    # addresses only. See integration/destinations.py.
    webhook_allowed_hosts: str = ""
    # 1 samples the event loop's lag for `GET /admin/debug/loop-lag` (benchmarks); 0 in production.
    loop_lag_probe: int = 0
    # Redis for the realtime doorbell and signals across processes, and for the sign-in attempt
    # counters (shared by every process, kept across restarts); empty: in memory (one process).
    redis_url: str = ""
    # Comma-separated origins allowed to open the live socket; empty: any (tickets already prove the user).
    ws_allowed_origins: str = ""
    # Frames waiting for one socket before it is closed as too slow (4008), and the longest one send may take.
    ws_queue_limit: int = 256
    ws_send_timeout_s: float = 10.0
    # How often the live tail checks the log for commits whose doorbell was lost (or rang in another process).
    ws_poll_interval_s: float = 2.0
    # How often the live tail asks the database whether the sessions of its open sockets are alive:
    # the longest an ended session keeps a socket when the news of its end was lost.
    ws_session_check_interval_s: float = 5.0
    # Comma-separated crash points for the fault-injection tests (e.g. "kill_after_push_commit");
    # empty in every real deployment.
    fault_injection: str = ""
    # The web app's files (index.html, sw.js, app/, vendor/); read once at start-up.
    pwa_dir: Path = Path(__file__).resolve().parents[3] / "pwa"

    def injects(self, fault: str) -> bool:
        return fault in self.fault_injection.split(",")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'loopline.db').resolve()}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)

        def get(name: str, default: Any) -> Any:
            raw = env.get(f"LOOPLINE_{name.upper()}")
            if raw is None:
                return default
            return type(default)(raw)

        base = cls()
        values = {f.name: get(f.name, getattr(base, f.name)) for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        if not settings.secret_key:
            settings = replace(settings, secret_key=_data_dir_secret(settings.data_dir))
        return settings
