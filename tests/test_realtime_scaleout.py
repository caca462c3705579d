"""Two server processes sharing PostgreSQL and Redis: the live tail across processes.

Needs the local PostgreSQL and Redis services (see tests/scaleout.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.live_helpers import Live, User
from tests.scaleout import POSTGRES, REDIS, require_scaleout_services
from tests.support import demo_world, running_server

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    require_scaleout_services()
    # Polling the log is slowed to a minute, so only the Redis doorbell can deliver within the test's timeouts.
    env = [("LOOPLINE_REDIS_URL", REDIS), ("LOOPLINE_WS_POLL_INTERVAL_S", "60")]
    with (
        demo_world(tmp_path_factory.mktemp("scaleout"), server_url=POSTGRES) as settings,
        running_server(settings, *env) as first,
        running_server(settings, *env) as second,
    ):
        yield first, second


async def test_a_message_pushed_through_one_process_reaches_a_socket_on_the_other_and_resumes_on_either(
    two_servers: tuple[str, str],
) -> None:
    a, b = two_servers
    async with httpx.AsyncClient(base_url=a, timeout=30) as http_a, httpx.AsyncClient(base_url=b, timeout=30) as http_b:
        wang = await User.sign_in(http_a, "wang.lei")
        lena = await User.sign_in(http_b, "lena.fischer")
        thread_id = await wang.new_thread()
        await wang.post(thread_id, "joining you in", mentions=["lena.fischer"])
        on_b = await Live.open(b, lena)
        crossing = await wang.post(thread_id, "pushed through process A")
        await on_b.until(lambda live: crossing in live.message_ids())

        # The tablet moves to process A mid-conversation: nothing lost, nothing twice.
        posted = [crossing]
        for n in range(10):
            posted.append(await wang.post(thread_id, f"while moving {n}"))
            if n == 4:
                await on_b.close()
        lena_on_a = User(http_a, lena.headers)
        on_a = await Live.open(a, lena_on_a, client_id=on_b.client_id, cursor=on_b.cursor)
        await on_a.until(lambda live: set(posted) <= set(on_b.message_ids()) | set(live.message_ids()))
        received = [m for m in on_b.messages() + on_a.messages() if m["id"] in set(posted)]
        assert sorted(m["id"] for m in received) == sorted(posted)
        assert [m["thread_seq"] for m in received] == sorted(m["thread_seq"] for m in received)
        await on_a.close()
