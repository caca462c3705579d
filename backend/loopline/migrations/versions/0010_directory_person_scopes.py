"""user rows move from the staff scope to person scopes; devices rebuild their read models

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 09:00:00.000000

Every staff member used to read every user (customer portal users with their e-mail
included) through the `staff` scope. A user row now lives in `person:<id>`, read by the
people who work with that user (see loopline/people/models.py, `colleague_ids`). The
logged rows move with it, and a new sync epoch makes every device rebuild its read model
(keeping its outbox), so the copies of the whole directory that devices hold are dropped.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

change_log = sa.table(
    'change_log', sa.column('entity', sa.String), sa.column('entity_id', sa.String), sa.column('scope_key', sa.String)
)
server_meta = sa.table('server_meta', sa.column('key', sa.String), sa.column('value', sa.String))


def upgrade() -> None:
    op.execute(
        change_log.update()
        .where(change_log.c.entity == 'user', change_log.c.scope_key == 'staff')
        .values(scope_key=sa.literal('person:', sa.String) + change_log.c.entity_id)
    )
    op.execute(server_meta.update().where(server_meta.c.key == 'epoch').values(value=str(uuid.uuid4())))


def downgrade() -> None:
    op.execute(
        change_log.update()
        .where(change_log.c.entity == 'user', change_log.c.scope_key.like('person:%'))
        .values(scope_key='staff')
    )
