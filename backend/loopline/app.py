"""The Litestar application: routes, auth, errors, OpenAPI, lifecycle."""

from __future__ import annotations

import gc
from typing import Any

from litestar import Litestar, Router, get
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.datastructures import State
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy import func, select, text

from loopline import __version__
from loopline.catalog.controllers import controllers as catalog_controllers
from loopline.compliance.controllers import controllers as compliance_controllers
from loopline.core.access import Principal
from loopline.core.api import dependencies
from loopline.core.auth import BearerAuthMiddleware, PrincipalCache, VerifiedTokens
from loopline.core.changelog import ChangeLog
from loopline.core.client_address import ForwardedClientMiddleware, TrustedProxies
from loopline.core.clock import Clock
from loopline.core.db import Database, is_sqlite, table_of
from loopline.core.errors import exception_handlers
from loopline.core.input_guard import guard_request_input
from loopline.core.loop_lag import LoopLagController, LoopLagProbe
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.customer.controllers import controllers as customer_controllers
from loopline.customer.models import Account
from loopline.integration import dispatcher as webhooks
from loopline.integration.controllers import controllers as integration_controllers
from loopline.loop import sla
from loopline.loop.controllers import controllers as loop_controllers
from loopline.media.blobs import BlobService
from loopline.media.controllers import controllers as media_controllers
from loopline.media.pool import ImagePool
from loopline.media.store import open_store
from loopline.people import service as people_service
from loopline.people.controllers import controllers as people_controllers
from loopline.people.models import Membership, RefreshToken, User
from loopline.quality.controllers import controllers as quality_controllers
from loopline.realtime.controllers import controllers as realtime_controllers
from loopline.realtime.hub import CHANNELS, HubSettings
from loopline.realtime.sessions import make_hub
from loopline.syncing.controllers import controllers as sync_controllers
from loopline.threads.controllers import controllers as thread_controllers
from loopline.webapp import routes as webapp
from loopline.webapp.build import build_of
from loopline.webapp.docs import swagger_ui

API_PREFIX = "/api/v1"
PUBLIC_PATHS = [f"^{API_PREFIX}/health$", "^/schema", f"^{API_PREFIX}/auth/(login|refresh)$"]
# What `load_principal` reads: a write to any of them ends every cached principal.
PRINCIPAL_TABLES = [table_of(model).name for model in (User, Membership, RefreshToken, Account)]
# Bounds how late a change made by another process (the command line) is noticed.
PRINCIPAL_CACHE_TTL_S = 5.0


class Health(BaseModel):
    status: str
    version: str
    database: dict[str, Any]


@get(f"{API_PREFIX}/health", operation_id="health", exclude_from_auth=True, tags=["system"], security=[])
async def health(state: State) -> Health:
    runtime: Runtime = state.runtime
    async with runtime.db.read_session() as session:
        revision = (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        last_seq = (await session.execute(select(func.max(ChangeLog.seq)))).scalar() or 0
    return Health(
        status="ok",
        version=__version__,
        database={"dialect": runtime.db.dialect, "revision": revision, "change_log_seq": last_seq},
    )


def channels_backend(settings: Settings) -> ChannelsBackend:
    """In memory for one process; Redis pub/sub when several processes serve the same database."""
    if settings.redis_url:
        return RedisChannelsPubSubBackend(redis=Redis.from_url(settings.redis_url))
    return MemoryChannelsBackend()


def freeze_startup_objects() -> None:
    """Keep what start-up built (modules, models, compiled schemas) out of garbage collections.

    Those objects live as long as the process; without this every full collection walks
    them again, a pause of a couple of hundred milliseconds under a thousand sockets.

    Then young objects get 20,000 allocations instead of 700 before a collection: a rule's
    transaction holds tens of thousands of objects for a few hundred milliseconds, and with
    the default they outlived two collections, reached the old generation and set off full
    collections of 60-100 ms inside pushes (seen in `scripts/bench loop`).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    runtime = Runtime(settings=settings, db=Database.open(settings), clock=clock or Clock())
    blobs = BlobService(runtime, open_store(settings), ImagePool(settings.image_workers))
    loop_lag = LoopLagProbe() if settings.loop_lag_probe else None
    channels = ChannelsPlugin(backend=channels_backend(settings), channels=CHANNELS)
    hub = make_hub(
        runtime,
        channels,
        HubSettings(
            queue_limit=settings.ws_queue_limit,
            send_timeout_s=settings.ws_send_timeout_s,
            poll_interval_s=settings.ws_poll_interval_s,
            session_check_interval_s=settings.ws_session_check_interval_s,
        ),
    )
    runtime.after_commit.append(hub.ring)
    runtime.on_sessions_ended.append(hub.end_sessions)
    build = build_of(settings.pwa_dir)

    async def load_principal(claims: dict[str, Any]) -> Principal | None:
        return await people_service.load_principal(runtime, claims)

    # With SQLite one process serves, so it sees every write that could change a principal;
    # processes sharing PostgreSQL would not see each other's, so they ask the database each time.
    if is_sqlite(settings.resolved_database_url):
        principals = PrincipalCache(runtime.clock, tables=PRINCIPAL_TABLES, ttl_s=PRINCIPAL_CACHE_TTL_S)

        async def principal_loader(_state: State, claims: dict[str, Any]) -> Principal | None:
            return await principals.resolve(claims, lambda: load_principal(claims))
    else:

        async def principal_loader(_state: State, claims: dict[str, Any]) -> Principal | None:
            return await load_principal(claims)

    async def close_runtime(_app: Litestar) -> None:
        await runtime.login_attempts.aclose()
        await runtime.db.close()

    api = Router(
        path=API_PREFIX,
        route_handlers=[
            *people_controllers,
            *catalog_controllers,
            *quality_controllers,
            *customer_controllers,
            *thread_controllers,
            *loop_controllers,
            *sync_controllers,
            *media_controllers,
            *realtime_controllers,
            *integration_controllers,
            *compliance_controllers,
            LoopLagController,
        ],
    )
    return Litestar(
        route_handlers=[*webapp.route_handlers, health, api],
        dependencies=dependencies,
        exception_handlers=exception_handlers,
        before_request=guard_request_input,
        request_max_body_size=settings.max_body_bytes,
        middleware=[
            DefineMiddleware(ForwardedClientMiddleware, proxies=TrustedProxies.from_setting(settings.trusted_proxies)),
            DefineMiddleware(BearerAuthMiddleware, exclude=PUBLIC_PATHS),
        ],
        state=State(
            {
                "runtime": runtime,
                "settings": settings,
                "principal_loader": principal_loader,
                "verified_tokens": VerifiedTokens(settings.secret_key),
                "blobs": blobs,
                "loop_lag": loop_lag,
                "hub": hub,
                "build": build,
            }
        ),
        plugins=[channels],
        on_startup=[hub.start, freeze_startup_objects],
        lifespan=[
            blobs.lifespan,
            *([loop_lag.lifespan] if loop_lag else []),
            *([sla.timer(runtime, settings.sla_sweep_interval_s)] if settings.sla_sweep_interval_s > 0 else []),
            webhooks.worker(runtime),
        ],
        # Runs after the lifespans above have ended, so their tasks never outlive the database.
        on_shutdown=[hub.stop, close_runtime],
        openapi_config=OpenAPIConfig(
            title="Loopline API",
            version=__version__,
            path="/schema",
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
            ),
            security=[{"BearerToken": []}],
            render_plugins=[swagger_ui(build)],
        ),
        debug=False,
    )
