"""The news that login sessions ended, between the people domain that ends them and the
live tail that must close their sockets.

Every way a session ends — logout, refresh-token reuse, deactivation, a password change
or reset, erasure — goes through `people.service.end_sessions`, which revokes the
sessions' refresh tokens and, once that commits, tells `Runtime.on_sessions_ended`. The
realtime hub listens there, closes this process's sockets of those sessions and passes
the news to every other process (realtime/hub.py). It lives in core because both sides
depend on it and neither on the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class EndedSessions:
    user_id: str
    # None: every session of the user, including any a process has not heard of yet.
    session_ids: frozenset[str] | None

    def covers(self, session_id: str) -> bool:
        """Whether the user's session `session_id` is one of these."""
        return self.session_ids is None or session_id in self.session_ids


SessionsEndedHook = Callable[[EndedSessions], None]
