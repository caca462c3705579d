"""Presence and typing: ephemeral state, never stored, expiring on the injected clock.

Every server process keeps a board fed by the same signals (its own sockets' and, through
the channels backend, every other process's), so all boards agree without shared
storage. A user's presence is the liveliest state any process reports for them: `active`
beats `idle`; when every process has reported them gone, they turn `offline` after
`OFFLINE_AFTER`. Typing stops by itself after `TYPING_TTL` without a refresh.

The board only decides; `expire(now)` is called by a timer in the server and directly by
tests, which move a frozen clock instead of waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

TYPING_TTL = timedelta(seconds=12)
OFFLINE_AFTER = timedelta(seconds=60)

Presence = Literal["active", "idle", "offline"]
# What one process reports about one user: the state of its liveliest socket, or gone.
Report = Literal["active", "idle", "gone"]


@dataclass(frozen=True)
class TypingStopped:
    thread_id: str
    user_id: str
    customer: bool  # typed by a customer, so customers saw it start


@dataclass(frozen=True)
class PresenceChanged:
    user_id: str
    state: Presence


@dataclass
class _User:
    reports: dict[str, Report] = field(default_factory=dict)  # by process
    shown: Presence = "offline"
    gone_since: datetime | None = None


@dataclass
class PresenceBoard:
    # (thread, user) → when it expires, and whether a customer types
    typing: dict[tuple[str, str], tuple[datetime, bool]] = field(default_factory=dict)
    users: dict[str, _User] = field(default_factory=dict)

    def typing_changed(self, thread_id: str, user_id: str, state: str, now: datetime, *, customer: bool) -> bool:
        """Record a typing signal; True when observers should hear of it (a stop only if it was typing)."""
        key = (thread_id, user_id)
        if state == "start":
            self.typing[key] = (now + TYPING_TTL, customer)
            return True
        return self.typing.pop(key, None) is not None

    def report(self, user_id: str, process: str, report: Report, now: datetime) -> PresenceChanged | None:
        """A process's report about a user; the change of their shown presence, if any."""
        user = self.users.setdefault(user_id, _User())
        user.reports[process] = report
        live = [r for r in user.reports.values() if r != "gone"]
        if live:
            user.gone_since = None
            return self._show(user_id, user, "active" if "active" in live else "idle")
        user.gone_since = user.gone_since or now
        return None

    def presence(self, user_id: str) -> Presence:
        user = self.users.get(user_id)
        return user.shown if user else "offline"

    def present_users(self) -> list[str]:
        return [user_id for user_id, user in self.users.items() if user.shown != "offline"]

    def expire(self, now: datetime) -> list[TypingStopped | PresenceChanged]:
        """Typing that was not refreshed, and users gone long enough to be offline."""
        stopped: list[TypingStopped | PresenceChanged] = [
            TypingStopped(thread_id, user_id, customer)
            for (thread_id, user_id), (until, customer) in self.typing.items()
            if until <= now
        ]
        for event in stopped:
            assert isinstance(event, TypingStopped)
            del self.typing[(event.thread_id, event.user_id)]
        for user_id, user in list(self.users.items()):
            if user.gone_since is not None and now - user.gone_since >= OFFLINE_AFTER:
                changed = self._show(user_id, user, "offline")
                del self.users[user_id]
                if changed:
                    stopped.append(changed)
        return stopped

    @staticmethod
    def _show(user_id: str, user: _User, state: Presence) -> PresenceChanged | None:
        if user.shown == state:
            return None
        user.shown = state
        return PresenceChanged(user_id, state)
