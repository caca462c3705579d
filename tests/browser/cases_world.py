"""Open cases for the case screens' tests, added to a played scenario (where every case is resolved).

`open_overdue_case` backdates a complaint through the same rule the server runs (`open_complaint`
in a unit of work on a frozen clock), then runs the SLA sweep at the real time: the case arrives
on devices through the change log, breached as the server's own timer would flag it.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from loopline.core.clock import Clock, FrozenClock
from loopline.core.db import Database
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.customer.models import Account, CaseOrigin
from loopline.loop.complaints import Complaint, open_complaint
from loopline.loop.sla import sweep
from tests.browser.worlds import api_as

LOT_018 = "CN-SZ-L2-2406-018"


async def _open_backdated(settings: Settings, account_code: str, title: str, hours_ago: float) -> str:
    case_id = str(uuid.uuid4())
    then = FrozenClock(datetime.now(UTC) - timedelta(hours=hours_ago))
    for clock in (then, Clock()):
        runtime = Runtime(settings=settings, db=Database.open(settings), clock=clock)
        try:
            if clock is then:
                async with runtime.unit_of_work(actor="system", command="case.open") as session:
                    account = await session.scalar(select(Account).where(Account.code == account_code))
                    assert account is not None
                    complaint = Complaint(
                        id=case_id,
                        account=account,
                        origin=CaseOrigin.CUSTOMER,
                        title=title,
                        description="",
                        contact_id=None,
                        lot_no=None,
                        category_code=None,
                        qty_affected=0,
                        qty_failed=0,
                    )
                    # Logged by the account's manager, who joins its thread as its opener.
                    actor = account.account_manager_id or "system"
                    await open_complaint(session, complaint, actor=actor, now=then.now())
            else:
                await sweep(runtime)
        finally:
            await runtime.db.close()
    return case_id


def open_overdue_case(settings: Settings, account_code: str, title: str, hours_ago: float) -> str:
    """A complaint opened `hours_ago`, flagged by the SLA sweep now; its id."""
    # Playwright's sync API runs an event loop in the test thread: run ours on another.
    with ThreadPoolExecutor(1) as worker:
        return worker.submit(asyncio.run, _open_backdated(settings, account_code, title, hours_ago)).result()


def push(base: str, username: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """One mutation pushed by `username` from a device of their own; its result."""
    with api_as(base, username) as http:
        answer = http.post(
            "/sync/push",
            json={
                "client_id": str(uuid.uuid4()),
                "schema_version": 1,
                "mutations": [
                    {
                        "mid": 1,
                        "id": str(uuid.uuid4()),
                        "name": name,
                        "args": args,
                        "client_ts": datetime.now(UTC).isoformat(),
                    }
                ],
            },
        )
        answer.raise_for_status()
        [result] = answer.json()["results"]
        return dict(result)


def open_complaint_now(base: str, username: str, account_id: str, title: str, **extra: Any) -> str:
    """A complaint opened now by `username` (`case.open`), applied; its id."""
    case_id = str(uuid.uuid4())
    result = push(base, username, "case.open", {"id": case_id, "account_id": account_id, "title": title, **extra})
    assert result["status"] == "applied", result
    return case_id
