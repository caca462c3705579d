"""What can go wrong while syncing, as exceptions with stable codes.

Two families matter to callers: *transient* failures (the network, a busy server, a page
that is not protocol JSON) are retried by the engine on a timer and never surface unless
the caller bounded the attempts; *stops* (`SyncStopped`) need a person or a new app
version, so the engine stops, keeps the outbox untouched, and raises one of them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class SyncStatus(StrEnum):
    """The engine's state, for a status bar or a test assertion."""

    IDLE = "idle"
    SYNCING = "syncing"
    BACKING_OFF = "backing_off"
    OWNED_BY_OTHER_USER = "owned_by_other_user"
    CLIENT_TOO_OLD = "client_too_old"
    AUTH_FAILED = "auth_failed"
    INCONSISTENT = "inconsistent"
    UNEXPECTED_RESPONSE = "unexpected_response"
    GAVE_UP = "gave_up"


class SyncError(Exception):
    """Base class: a failure with a machine-readable `code` and optional `details`."""

    code = "sync_error"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class NetworkError(SyncError):
    """No usable answer arrived: connection refused or reset, timeout, dropped response.

    The request may or may not have been committed by the server; the protocol's
    idempotency (mids, client-made ids) makes resending safe.
    """

    code = "network_error"


class TransientError(SyncError):
    """An answer arrived but says "try again later" (503, 429, 5xx, a captive portal page)."""

    code = "transient"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after = retry_after


class UnsendableMutation(SyncError, ValueError):
    """`enqueue` refused a mutation the server would refuse as a whole push.

    The outbox resends its oldest entry unchanged until the server acknowledges it, so an
    entry that can never be sent would stop every entry behind it, for ever: such a
    mutation never enters the queue. (Content the server can read but not apply, such as
    a NUL in a message body, is queued: the server rejects that mutation alone.)
    """

    code = "unsendable_mutation"


class SyncStopped(SyncError):
    """Syncing cannot continue without outside help; the outbox is left untouched."""

    code = "sync_stopped"
    status = SyncStatus.UNEXPECTED_RESPONSE


class ClientTooOld(SyncStopped):
    """`426 client_too_old`: the app must be updated; its queue waits for the new version."""

    code = "client_too_old"
    status = SyncStatus.CLIENT_TOO_OLD


class ClientOwnedByOtherUser(SyncStopped):
    """This device's client id (and outbox) belongs to another user.

    The owner's outbox stays queued until the owner signs in again on this device.
    """

    code = "client_owned_by_other_user"
    status = SyncStatus.OWNED_BY_OTHER_USER


class AuthenticationFailed(SyncStopped):
    """The credentials are refused (not a network problem): a person must sign in again."""

    code = "authentication_failed"
    status = SyncStatus.AUTH_FAILED


class OutboxInconsistent(SyncStopped):
    """The server's `last_mid` contradicts this device's bookkeeping.

    Either the server expects mutations this device already dropped after an
    acknowledgement (the server lost them, e.g. a database restore), or it acknowledges
    mids this device never issued (a restored device file). Resending or dropping
    anything automatically could lose or duplicate work, so a person must look.
    """

    code = "outbox_inconsistent"
    status = SyncStatus.INCONSISTENT


class UnexpectedResponse(SyncStopped):
    """A status or error code the protocol does not define for this call (e.g. 400)."""

    code = "unexpected_response"
    status = SyncStatus.UNEXPECTED_RESPONSE


class RetriesExhausted(SyncStopped):
    """The caller's `max_attempts` ran out while failures were still transient."""

    code = "retries_exhausted"
    status = SyncStatus.GAVE_UP
