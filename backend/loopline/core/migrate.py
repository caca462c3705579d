"""Running the Alembic history from code (`loopline db upgrade`, `scripts/serve`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from loopline.core.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate to `revision`; runs its own event loop, so call it outside a running one."""
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.resolved_database_url), revision)


def autogenerate(settings: Settings, message: str) -> None:
    command.revision(alembic_config(settings.resolved_database_url), message=message, autogenerate=True)
