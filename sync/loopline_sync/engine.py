"""The client side of the sync protocol: push the outbox, pull the change log.

Every rule here answers one way sync systems lose data (see the protocol document):

- the outbox only shrinks on a real acknowledgement: a PushResponse (or PullResponse)
  that parses, for our own client id — never on a status code alone, never on auth
  trouble, never on a 200 page from a captive portal;
- a pulled page, its cursor and the acknowledged outbox entries change in one local
  transaction (`LocalStore.apply_pull_page`);
- transient trouble is retried on a timer with jittered backoff, not "on the next write",
  so a quiet device still drains its queue;
- anything that cannot heal by waiting (another user's device, an app too old, a server
  that lost acknowledged work) stops the engine loudly, outbox untouched.

One engine serialises its network exchanges with a lock: "a 401 pauses both queues" and
an acknowledgement from a pull never races one from a push. `enqueue` does not take the
lock — writing offline must never wait for the network. Photos travel on their own queue
(`photos.py`), which shares the sign-in but never this lock: a slow photo must not hold
back a mutation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from pydantic import ValidationError

from loopline_sync import MAX_ARGS_DEPTH, MAX_MUTATIONS_PER_PUSH, MAX_PULL_LIMIT, MAX_PUSH_BYTES, SCHEMA_VERSION
from loopline_sync.auth import Auth
from loopline_sync.backoff import Attempts, Backoff, parse_retry_after
from loopline_sync.errors import (
    ClientOwnedByOtherUser,
    ClientTooOld,
    NetworkError,
    OutboxInconsistent,
    RetriesExhausted,
    SyncError,
    SyncStatus,
    SyncStopped,
    TransientError,
    UnexpectedResponse,
    UnsendableMutation,
)
from loopline_sync.ids import Clock, iso_utc, new_id, utc_now
from loopline_sync.protocol import (
    Mutation,
    MutationResult,
    PullResponse,
    PushResponse,
    ResultStatus,
    nests_deeper_than,
)
from loopline_sync.store import LocalStore, OutboxEntry
from loopline_sync.transport import Transport, TransportResponse

log = logging.getLogger("loopline_sync")

PUSH_PATH = "/api/v1/sync/push"
PULL_PATH = "/api/v1/sync/pull"
# A server that answers reset_required to a pull from cursor null, again and again, is broken.
MAX_RESETS_PER_PULL = 3

P = ParamSpec("P")
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
ResultsHook = Callable[[list[MutationResult]], None]


def encode_json(payload: Any) -> bytes:
    """The one JSON encoding used for request bodies, so size estimates match what is sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@dataclass
class SyncStats:
    """Counters for tests, the load generator and a status screen."""

    push_requests: int = 0
    pull_pages: int = 0
    changes_applied: int = 0
    applied: int = 0
    rejected: int = 0
    duplicate: int = 0
    acknowledged: int = 0
    retries: int = 0
    batch_halvings: int = 0
    gaps: int = 0
    resets: int = 0
    token_renewals: int = 0


class SyncEngine:
    def __init__(
        self,
        store: LocalStore,
        transport: Transport,
        auth: Auth,
        *,
        batch_size: int = 100,
        pull_limit: int = MAX_PULL_LIMIT,
        schema_version: int = SCHEMA_VERSION,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utc_now,
        backoff: Backoff | None = None,
        on_results: ResultsHook | None = None,
    ) -> None:
        if batch_size < 1 or not 1 <= pull_limit <= MAX_PULL_LIMIT:
            raise ValueError("batch_size must be >= 1 and pull_limit within 1..MAX_PULL_LIMIT")
        self.store = store
        self.transport = transport
        self.auth = auth
        self.batch_size = min(batch_size, MAX_MUTATIONS_PER_PUSH)
        self.pull_limit = pull_limit
        self.schema_version = schema_version
        self.client_id = store.client_id  # one tiny indexed read, once, at construction
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._on_results = on_results
        self._lock = asyncio.Lock()
        self._verified_user: str | None = None
        # Stops that no retry can heal for this engine's lifetime.
        self._sticky: SyncStopped | None = None

        self.status = SyncStatus.IDLE
        # The most recent problem (kept after recovery, for diagnostics); `status` is the present.
        self.last_error: SyncError | None = None
        self.next_retry_in: float | None = None
        self.stats = SyncStats()
        self.rejections: deque[MutationResult] = deque(maxlen=1000)

    # -- public API ----------------------------------------------------------------

    async def enqueue(self, name: str, args: dict[str, Any], *, id: str | None = None) -> int:
        """Queue a mutation locally (works offline) and return its mid.

        `id` is the mutation's own id (a UUIDv7 is made if omitted); entity ids go in `args`.
        """
        mutation_id = id or new_id()
        moment = self._clock()
        client_ts = iso_utc(moment)
        self._check_sendable(name, args, mutation_id, moment)
        return await self._io(
            self.store.enqueue, name, args, mutation_id=mutation_id, client_ts=client_ts, user_id=self.auth.user_id
        )

    def _check_sendable(self, name: str, args: dict[str, Any], mutation_id: str, moment: datetime) -> None:
        """Raise `UnsendableMutation` for what the server would refuse as a whole push.

        Such an entry would sit at the head of the queue for ever and stop everything
        queued behind it: a malformed envelope (a name that is not text, an id with a NUL),
        args that are no JSON object or do not encode (a lone surrogate is no UTF-8, a
        set is no JSON), args deeper than `MAX_ARGS_DEPTH`, or one mutation that alone
        exceeds the push size limit (the server answers 413 without reading it).
        """
        try:
            Mutation(mid=1, id=mutation_id, name=name, args=args, client_ts=moment)
        except ValidationError as exc:
            problem = exc.errors(include_url=False)[0]
            raise UnsendableMutation(
                f"mutation {name!r} is malformed: {'.'.join(map(str, problem['loc']))}: {problem['msg']}",
                code="malformed_mutation",
            ) from None
        if not isinstance(args, dict):
            raise UnsendableMutation(f"the args of {name!r} must be a dict (a JSON object)", code="args_not_object")
        if nests_deeper_than(args, MAX_ARGS_DEPTH):
            raise UnsendableMutation(f"the args of {name!r} nest deeper than {MAX_ARGS_DEPTH} levels", code="too_deep")
        wire = {"mid": 2**53, "id": mutation_id, "name": name, "args": args, "client_ts": iso_utc(moment)}
        try:
            size = len(encode_json(wire))
        except (TypeError, ValueError, RecursionError) as exc:
            raise UnsendableMutation(f"the args of {name!r} are not JSON: {exc}", code="args_not_json") from None
        if size + len(self._envelope()) > MAX_PUSH_BYTES:
            raise UnsendableMutation(
                f"mutation {name!r} exceeds the {MAX_PUSH_BYTES}-byte push limit; send photos as blobs",
                code="too_large",
            )

    async def push(self, *, max_attempts: int | None = None) -> None:
        """Push the outbox oldest-first until it is empty.

        Transient failures are retried on a backoff timer, forever unless `max_attempts`
        bounds the consecutive failures (then `RetriesExhausted`). Raises `SyncStopped`
        subclasses for conditions waiting cannot heal.
        """
        await self._exclusive(self._push, max_attempts)

    async def pull(self, *, max_attempts: int | None = None) -> None:
        """Pull pages from the stored cursor until `has_more` is false."""
        await self._exclusive(self._pull, max_attempts)

    async def _exclusive(self, step: Callable[[Attempts], Awaitable[None]], max_attempts: int | None) -> None:
        """One network exchange at a time per engine ("a 401 pauses both queues")."""
        async with self._lock:
            self._begin()
            try:
                await step(Attempts(max_attempts))
            finally:
                self._settle()

    async def sync(self, *, max_attempts: int | None = None) -> None:
        """Push, then pull: our own writes come back in the pull with server versions."""
        await self.push(max_attempts=max_attempts)
        await self.pull(max_attempts=max_attempts)

    async def run_until_idle(self, max_attempts: int = 20, *, max_rounds: int = 10) -> None:
        """Sync until the outbox is empty and the pull is caught up (for tests and tools)."""
        for _ in range(max_rounds):
            await self.sync(max_attempts=max_attempts)
            if await self._io(self.store.outbox_size) == 0:
                return
        raise self._stop(RetriesExhausted(f"outbox still not empty after {max_rounds} rounds"))

    # -- push ----------------------------------------------------------------------

    async def _push(self, attempts: Attempts) -> None:
        limit = self.batch_size
        from_mid: int | None = None  # set after a mutation_gap: resend from the server's expected mid
        while True:
            batch = self._fit(await self._io(self.store.pending, limit, from_mid=from_mid))
            if not batch:
                return
            self._check_batch(batch)
            payload = {
                "client_id": self.client_id,
                "schema_version": self.schema_version,
                "mutations": [entry.wire() for entry in batch],
            }
            response = await self._request(PUSH_PATH, payload, attempts)
            if response is None:
                continue  # retry the same batch, same mids
            self.stats.push_requests += 1
            if response.status == 413:
                if len(batch) > 1:
                    limit = max(1, len(batch) // 2)
                    self.stats.batch_halvings += 1
                    log.info("push of %d mutations too large; halving to %d", len(batch), limit)
                else:
                    # One mutation always fits our own limit (checked at enqueue), so a
                    # 413 at size 1 is a middlebox with a smaller limit: wait and retry.
                    await self._fail(
                        attempts, TransientError("payload too large at batch size 1", code="payload_too_large")
                    )
                continue
            if response.status == 409:
                from_mid = await self._on_gap(response, batch, attempts)
                continue
            ack = self._parse_push(response)
            if ack is None:
                await self._fail(
                    attempts, TransientError("push answered 200 without an acknowledgement", code="not_protocol_json")
                )
                continue
            await self._acknowledge(ack.last_mid)
            self._record(ack.results)
            if ack.last_mid < batch[0].mid:
                await self._fail(attempts, TransientError("push acknowledged nothing of the batch", code="no_progress"))
                continue
            attempts.progressed()
            from_mid = None

    def _envelope(self) -> bytes:
        return encode_json({"client_id": self.client_id, "schema_version": self.schema_version, "mutations": []})

    def _fit(self, batch: list[OutboxEntry]) -> list[OutboxEntry]:
        """The longest prefix of `batch` within the protocol's byte limit (at least one entry)."""
        budget = MAX_PUSH_BYTES - len(self._envelope())
        fitted: list[OutboxEntry] = []
        used = 0
        for entry in batch:
            size = len(encode_json(entry.wire())) + (1 if fitted else 0)
            if fitted and used + size > budget:
                break
            fitted.append(entry)
            used += size
        return fitted

    def _check_batch(self, batch: Sequence[OutboxEntry]) -> None:
        mids = [entry.mid for entry in batch]
        if mids != list(range(mids[0], mids[0] + len(mids))):
            raise self._stop(OutboxInconsistent(f"the local outbox has a gap: {mids[:10]}..."))
        user = self.auth.user_id
        strangers = {entry.user_id for entry in batch if entry.user_id is not None} - {user}
        if user is not None and strangers:
            raise self._stop(
                ClientOwnedByOtherUser(
                    "The queued mutations belong to another user.", details={"owner": strangers.pop()}
                )
            )

    def _parse_push(self, response: TransportResponse) -> PushResponse | None:
        """The acknowledgement, or None if this 200 is not one (captive portal, proxy, wrong client)."""
        try:
            ack = PushResponse.model_validate_json(response.body)
        except ValidationError:
            return None
        return ack if ack.client_id == self.client_id else None

    async def _on_gap(
        self, response: TransportResponse, batch: Sequence[OutboxEntry], attempts: Attempts
    ) -> int | None:
        """`409 mutation_gap`: the server is behind; return the mid to resend from."""
        code, details = response.error()
        expected = details.get("expected_mid")
        if code != "mutation_gap" or not isinstance(expected, int) or isinstance(expected, bool):
            raise self._stop(UnexpectedResponse(f"push answered 409 {code}", code=code, details=details))
        self.stats.gaps += 1
        issued_up_to = await self._io(lambda: self.store.next_mid) - 1
        oldest = (await self._io(self.store.pending, 1))[0].mid
        log.warning("server expects mid %d; the batch started at %d", expected, batch[0].mid)
        self.last_error = SyncError(f"server expects mid {expected}", code="mutation_gap", details=details)
        if expected < oldest:
            raise self._stop(
                OutboxInconsistent(
                    f"The server expects mid {expected}, which this device dropped after an acknowledgement: "
                    "the server has lost mutations the device cannot resend.",
                    details={"expected_mid": expected, "oldest_queued_mid": oldest},
                )
            )
        if expected > issued_up_to:
            raise self._stop(
                OutboxInconsistent(
                    f"The server expects mid {expected}, beyond the last mid this device issued ({issued_up_to}).",
                    details={"expected_mid": expected, "issued_up_to": issued_up_to},
                )
            )
        if expected == batch[0].mid:
            # A batch that starts at the expected mid cannot have a gap: a confused server. Wait.
            await self._fail(
                attempts, TransientError("contradictory mutation_gap", code="mutation_gap", details=details)
            )
            return None
        return expected

    async def _acknowledge(self, last_mid: int) -> None:
        acked = await self._io(lambda: self.store.acked_mid)
        if last_mid < acked:
            raise self._stop(
                OutboxInconsistent(
                    f"The server now acknowledges only up to mid {last_mid} after acknowledging {acked}: "
                    "it lost acknowledged mutations (restored database?).",
                    details={"last_mid": last_mid, "acked_mid": acked},
                )
            )
        try:
            self.stats.acknowledged += await self._io(self.store.ack, last_mid)
        except OutboxInconsistent as exc:
            raise self._stop(exc) from None

    def _record(self, results: list[MutationResult]) -> None:
        for result in results:
            if result.status is ResultStatus.APPLIED:
                self.stats.applied += 1
            elif result.status is ResultStatus.DUPLICATE:
                self.stats.duplicate += 1
            else:
                self.stats.rejected += 1
                self.rejections.append(result)
                log.info("mutation %s (mid %d) rejected: %s", result.id, result.mid, result.error)
        if self._on_results is not None and results:
            self._on_results(results)

    # -- pull ----------------------------------------------------------------------

    async def _pull(self, attempts: Attempts) -> None:
        cursor: str | None = await self._io(lambda: self.store.cursor)
        resets = 0
        while True:
            payload = {
                "client_id": self.client_id,
                "schema_version": self.schema_version,
                "cursor": cursor,
                "limit": self.pull_limit,
            }
            response = await self._request(PULL_PATH, payload, attempts)
            if response is None:
                continue
            if response.status != 200:
                code, details = response.error()
                raise self._stop(
                    UnexpectedResponse(f"pull answered {response.status} {code}", code=code, details=details)
                )
            try:
                page = PullResponse.model_validate_json(response.body)
            except ValidationError:
                await self._fail(attempts, TransientError("pull answered 200 without a page", code="not_protocol_json"))
                continue
            if page.reset_required:
                resets += 1
                if resets > MAX_RESETS_PER_PULL:
                    raise self._stop(UnexpectedResponse("the server keeps answering reset_required", code="reset_loop"))
                log.warning("pull: reset_required; rebuilding the read model (the outbox is kept)")
                # The page's changes (if any) are relative to the old cursor: ignore them.
                await self._io(self.store.reset_read_model)
                self.stats.resets += 1
                cursor = None
                attempts.progressed()
                continue
            await self._check_not_regressed(page.last_mid)
            try:
                await self._io(self.store.apply_pull_page, page.changes, page.cursor, page.last_mid)
            except OutboxInconsistent as exc:
                raise self._stop(exc) from None
            self.stats.pull_pages += 1
            self.stats.changes_applied += len(page.changes)
            attempts.progressed()
            cursor = page.cursor
            if not page.has_more:
                return

    async def _check_not_regressed(self, last_mid: int) -> None:
        acked = await self._io(lambda: self.store.acked_mid)
        if last_mid < acked:
            raise self._stop(
                OutboxInconsistent(
                    f"The server reports last_mid {last_mid} after acknowledging {acked}: "
                    "it lost acknowledged mutations (restored database?).",
                    details={"last_mid": last_mid, "acked_mid": acked},
                )
            )

    # -- one exchange ------------------------------------------------------------------

    async def _request(self, path: str, payload: dict[str, Any], attempts: Attempts) -> TransportResponse | None:
        """POST once. Returns 200/409/413 answers to the caller; handles the rest.

        None means "nothing usable came back, send the same thing again" (after a
        backoff sleep where one is due). Stops are raised.
        """
        try:
            headers = await self.auth.headers()
        except (NetworkError, TransientError) as exc:
            await self._fail(attempts, exc)
            return None
        except SyncStopped as exc:
            raise self._stop(exc) from None
        await self._check_owner()
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            response = await self.transport.post(path, encode_json(payload), headers)
        except NetworkError as exc:
            await self._fail(attempts, exc)
            return None
        status = response.status
        if status == 401:
            await self._on_unauthorized(token, attempts)
            return None
        attempts.unauthorized = 0
        if status in (200, 409, 413):
            return response
        code, details = response.error()
        if status == 403 and code == "client_owned_by_other_user":
            raise self._stop(
                ClientOwnedByOtherUser(
                    "This device is bound to another user; their queue stays here until they sign in again.",
                    details=details,
                )
            )
        if status == 426:
            raise self._stop(
                ClientTooOld("This app is too old for the server: update it to keep syncing.", details=details)
            )
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            await self._fail(
                attempts,
                TransientError(
                    f"{path} answered {status}", code=code or f"http_{status}", details=details, retry_after=retry_after
                ),
            )
            return None
        raise self._stop(UnexpectedResponse(f"{path} answered {status} {code}", code=code, details=details))

    async def _on_unauthorized(self, token: str, attempts: Attempts) -> None:
        """401: renew the token and resend the same request. The outbox is not touched."""
        attempts.unauthorized += 1
        self.last_error = SyncError("access token rejected", code="unauthorized")
        if attempts.unauthorized > 1:
            # A fresh token was refused too: do not hammer the server; back off first.
            await self._fail(attempts, SyncError("access token rejected again", code="unauthorized"))
        try:
            await self.auth.handle_unauthorized(token)
        except (NetworkError, TransientError) as exc:
            await self._fail(attempts, exc)
            return
        except SyncStopped as exc:
            raise self._stop(exc) from None
        self.stats.token_renewals += 1

    async def _check_owner(self) -> None:
        """Never send one user's queue (or pull into it) with another user's token."""
        user = self.auth.user_id
        if user is None or user == self._verified_user:
            return
        owner = await self._io(self.store.bind_owner, user)
        if owner != user:
            raise self._stop(
                ClientOwnedByOtherUser(
                    "This device's queue belongs to another user; it stays here until they sign in again.",
                    details={"owner_user_id": owner},
                )
            )
        self._verified_user = user

    # -- state -----------------------------------------------------------------------

    async def _fail(self, attempts: Attempts, error: SyncError) -> None:
        """Count a transient failure and sleep the backoff delay (or give up at the limit)."""
        attempts.failures += 1
        self.last_error = error
        if attempts.limit is not None and attempts.failures >= attempts.limit:
            raise self._stop(
                RetriesExhausted(
                    f"gave up after {attempts.failures} consecutive failures; last: {error.code}: {error.message}",
                    details={"last_error": error.code},
                )
            )
        self.stats.retries += 1
        retry_after = error.retry_after if isinstance(error, TransientError) else None
        delay = self._backoff.delay(attempts.failures, self._rng, retry_after)
        log.info("sync: %s (%s); retrying in %.2fs", error.code, error.message, delay)
        self.status = SyncStatus.BACKING_OFF
        self.next_retry_in = delay
        await self._sleep(delay)
        self.status = SyncStatus.SYNCING
        self.next_retry_in = None

    def _stop(self, error: SyncStopped) -> SyncStopped:
        self.status = error.status
        self.last_error = error
        if isinstance(error, ClientTooOld | OutboxInconsistent):
            self._sticky = error
        log.warning("sync stopped: %s: %s", error.code, error.message)
        return error

    def _begin(self) -> None:
        if self._sticky is not None:
            sticky = self._sticky
            self.status = sticky.status
            raise type(sticky)(sticky.message, code=sticky.code, details=sticky.details)
        self.status = SyncStatus.SYNCING

    def _settle(self) -> None:
        if self.status in (SyncStatus.SYNCING, SyncStatus.BACKING_OFF):
            self.status = SyncStatus.IDLE
        self.next_retry_in = None

    @staticmethod
    async def _io(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a store call in a worker thread (commits fsync; see store.py)."""
        return await asyncio.to_thread(fn, *args, **kwargs)
