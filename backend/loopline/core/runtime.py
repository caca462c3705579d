"""The process-wide objects every request and command works with, built once at start."""

from __future__ import annotations

from dataclasses import dataclass, field

from loopline.core.clock import Clock
from loopline.core.db import Database
from loopline.core.group_commit import GroupCommit
from loopline.core.ratelimit import AttemptLimiter, attempt_limiter
from loopline.core.session_end import SessionsEndedHook
from loopline.core.settings import Settings
from loopline.core.uow import AfterCommit, UnitOfWork


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=Clock)
    # Sign-in attempts per username and per client address (see core/ratelimit.py).
    login_attempts: AttemptLimiter = field(init=False)
    # Called after every commit that appended to the change log (see realtime/hub.py).
    after_commit: list[AfterCommit] = field(default_factory=list)
    # Told after every commit that ended login sessions (see core/session_end.py); must not block.
    on_sessions_ended: list[SessionsEndedHook] = field(default_factory=list)
    # Small concurrent writes (sync pushes) share transactions (see core/group_commit.py).
    group_commit: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.group_commit = GroupCommit(self.unit_of_work)
        self.login_attempts = attempt_limiter(
            self.settings.redis_url, self.clock, window_s=self.settings.login_window_s
        )

    def unit_of_work(self, *, actor: str, command: str | None = None) -> UnitOfWork:
        return UnitOfWork(self.db, actor=actor, clock=self.clock, command=command, after_commit=self.after_commit)
