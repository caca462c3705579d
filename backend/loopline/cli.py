"""The `loopline` command: serve, migrate, load the demo, manage users, verify the audit chain."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click

from loopline.core.access import Role
from loopline.core.audit import chain_head, verify_chain
from loopline.core.db import Database
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.people.models import MembershipKind

T = TypeVar("T")


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


def _with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    async def run() -> T:
        runtime = Runtime(settings=settings, db=Database.open(settings))
        try:
            return await work(runtime)
        finally:
            await runtime.db.close()

    return asyncio.run(run())


@click.group()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="LOOPLINE_DATA_DIR",
    default=Path("./var"),
    show_default=True,
    help="Where the SQLite database, the blobs and the signing key live.",
)
@click.pass_context
def main(ctx: click.Context, data_dir: Path) -> None:
    """Loopline: quality-to-customer collaboration for manufacturers."""
    ctx.obj = Settings.from_env(data_dir=data_dir)


WS_PING_INTERVAL_S = 25.0
WS_PING_TIMEOUT_S = 35.0


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the API and the web app (run `db upgrade` first)."""
    import uvicorn

    from loopline.app import create_app
    from loopline.realtime.ws_protocol import LiveSocketProtocol

    # Live sockets are pinged every 25 s; one that has not answered 35 s later (silent for up to 60 s) is dropped.
    uvicorn.run(
        create_app(_settings(ctx)),
        host=host,
        port=port,
        log_level="info",
        # The app reads X-Forwarded-For itself, from LOOPLINE_TRUSTED_PROXIES only (see
        # core/client_address.py); uvicorn's would trust any local process's header.
        proxy_headers=False,
        ws_ping_interval=WS_PING_INTERVAL_S,
        ws_ping_timeout=WS_PING_TIMEOUT_S,
        # Frames are small JSON; per-socket zlib state would cost more memory and CPU than it saves.
        ws_per_message_deflate=False,
        # uvicorn's lightest implementation per idle socket, lightened further (see ws_protocol.py):
        # the legacy "websockets" one runs tasks of its own for every socket and measured ~9 KB more
        # each (`scripts/bench realtime`).
        ws=LiveSocketProtocol,
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply the migration history up to REVISION."""
    from loopline.core import migrate

    migrate.upgrade(_settings(ctx.find_root()), revision)
    click.echo(f"database at {revision}")


@db.command("revision")
@click.option("--message", "-m", required=True, help="What the migration changes.")
@click.pass_context
def db_revision(ctx: click.Context, message: str) -> None:
    """Write a new migration from the difference between the models and the database (developers)."""
    from loopline.core import migrate

    migrate.autogenerate(_settings(ctx.find_root()), message)


@main.group()
def demo() -> None:
    """The Nordlicht demo data set."""


@demo.command("load")
@click.option("--if-empty", is_flag=True, help="Do nothing (and succeed) when the database already has data.")
@click.pass_context
def demo_load(ctx: click.Context, if_empty: bool) -> None:
    """Load the demo data into an empty database."""
    from loopline.demo.loader import database_is_empty, load_demo

    async def work(runtime: Runtime) -> str:
        if not await database_is_empty(runtime):
            if if_empty:
                return "database has data; demo not loaded"
            raise click.ClickException("the database is not empty; the demo loads only into an empty one")
        await load_demo(runtime)
        return "demo data loaded"

    click.echo(_with_runtime(_settings(ctx.find_root()), work))


@demo.command("logins")
def demo_logins() -> None:
    """Print the demo users and their shared password."""
    from loopline.demo.loader import DEMO_LOGINS, DEMO_PASSWORD

    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for username, description in DEMO_LOGINS:
        click.echo(f"  {username:<14} {description}")


@main.group()
def users() -> None:
    """User accounts."""


def _parse_membership(value: str) -> tuple[MembershipKind, str]:
    kind, sep, ref = value.partition(":")
    if not sep or kind not in MembershipKind.__members__.values():
        raise click.BadParameter(f"{value!r}: use plant:<id>, account:<id> or region:<code>")
    return MembershipKind(kind), ref


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--display-name", default=None)
@click.option("--email", default=None)
@click.option("--member", "members", multiple=True, help="plant:<id>, account:<id> or region:<code>; repeatable.")
@click.option("--password", envvar="LOOPLINE_NEW_USER_PASSWORD", default=None, help="Prompted for when omitted.")
@click.pass_context
def users_create(
    ctx: click.Context,
    username: str,
    role: str,
    display_name: str | None,
    email: str | None,
    members: tuple[str, ...],
    password: str | None,
) -> None:
    """Create a user."""
    from loopline.people.service import create_user

    memberships = [_parse_membership(m) for m in members]
    secret = password or getpass.getpass(f"password for {username}: ")
    if len(secret) < 8:
        raise click.ClickException("a password needs at least 8 characters")

    async def work(runtime: Runtime) -> Any:
        return await create_user(
            runtime,
            actor="system:cli",
            username=username,
            password=secret,
            display_name=display_name or username,
            role=Role(role),
            email=email,
            memberships=memberships,
        )

    user = _with_runtime(_settings(ctx.find_root()), work)
    click.echo(f"created {user.username} ({user.role}) {user.id}")


@main.group("sync")
def sync_group() -> None:
    """Offline sync administration."""


@sync_group.command("new-epoch")
@click.pass_context
def sync_new_epoch(ctx: click.Context) -> None:
    """Start a new sync epoch (run after restoring a backup): every device rebuilds its read model."""
    from loopline.syncing.meta import new_epoch

    async def work(runtime: Runtime) -> str:
        async with runtime.unit_of_work(actor="system:cli", command="sync.new_epoch") as session:
            return await new_epoch(session)

    click.echo(f"sync epoch is now {_with_runtime(_settings(ctx.find_root()), work)}")


@sync_group.command("compact")
@click.option("--older-than-days", default=90, show_default=True, type=click.IntRange(min=90))
@click.pass_context
def sync_compact(ctx: click.Context, older_than_days: int) -> None:
    """Drop change-log history older than the retention; devices behind it rebuild their read model."""
    from loopline.syncing.compaction import compact

    async def work(runtime: Runtime) -> Any:
        return await compact(runtime, timedelta(days=older_than_days))

    report = _with_runtime(_settings(ctx.find_root()), work)
    click.echo(
        f"compacted up to seq {report.horizon_seq}: {report.superseded} superseded rows and "
        f"{report.tombstones} tombstones removed"
    )


@main.group()
def blobs() -> None:
    """Photo uploads."""


@blobs.command("sweep")
@click.pass_context
def blobs_sweep(ctx: click.Context) -> None:
    """Mark photos that never arrived (14 days) missing and drop expired partial uploads."""
    from loopline.media.blobs import mark_missing

    report = _with_runtime(_settings(ctx.find_root()), mark_missing)
    click.echo(
        f"{report.missing} attachments marked missing, {report.settled} settled, "
        f"{report.expired_uploads} partial uploads expired"
    )


@main.group()
def cases() -> None:
    """Customer cases."""


@cases.command("sweep")
@click.pass_context
def cases_sweep(ctx: click.Context) -> None:
    """Flag open cases past their first-response or resolution due time (the server does this every minute)."""
    from loopline.loop.sla import sweep

    click.echo(f"{_with_runtime(_settings(ctx.find_root()), sweep)} SLA breaches flagged")


@main.group()
def audit() -> None:
    """The tamper-evident audit chain."""


@audit.command("verify")
@click.option("--expect-head", default=None, help="A head hash recorded earlier; catches deleted newest events.")
@click.pass_context
def audit_verify(ctx: click.Context, expect_head: str | None) -> None:
    """Walk the chain; exit 1 and name the first broken seq if it does not hold."""

    async def work(runtime: Runtime) -> Any:
        async with runtime.db.read_session() as session:
            return await verify_chain(session, expected_head=expect_head)

    report = _with_runtime(_settings(ctx.find_root()), work)
    if report.ok:
        click.echo(f"audit chain ok: {report.events} events, head {report.head_hash}")
        return
    click.echo(f"audit chain BROKEN at seq {report.first_broken_seq}: {report.reason}", err=True)
    sys.exit(1)


@audit.command("export")
@click.option("--output", "-o", type=click.File("wb"), default="-", help="Where to write the lines (default: stdout).")
@click.option("--after-seq", default=0, show_default=True, type=click.IntRange(min=0), help="Export after this seq.")
@click.pass_context
def audit_export(ctx: click.Context, output: BinaryIO, after_seq: int) -> None:
    """Write the chain as JSON lines, one event each, as verifiable evidence; the head goes to stderr."""
    from loopline.compliance.evidence import export_lines

    async def work(runtime: Runtime) -> tuple[int, str]:
        async with runtime.db.read_session() as session:
            head_seq, head_hash = await chain_head(session)
        count = 0
        async for line in export_lines(runtime.db, after_seq=after_seq, up_to=head_seq):
            output.write(line)
            count += 1
        return count, head_hash

    count, head_hash = _with_runtime(_settings(ctx.find_root()), work)
    click.echo(f"exported {count} events; chain head {head_hash}", err=True)
