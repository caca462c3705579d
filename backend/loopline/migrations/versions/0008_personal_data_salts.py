"""personal data salts on contacts and users

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 09:00:00.000000

The audit chain records personal fields as commitments keyed with a salt of the row's
own (see loopline/core/audit.py). Rows that exist already get a salt here, so their
changes from now on are committed too; what the chain recorded of them before this
revision was recorded in clear and stays so (the chain cannot be rewritten).
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('contact', 'user')


def upgrade() -> None:
    connection = op.get_bind()
    for name in TABLES:
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.add_column(sa.Column('personal_salt', sa.String(length=64), nullable=True))
        table = sa.table(name, sa.column('id', sa.String), sa.column('personal_salt', sa.String))
        ids = connection.execute(sa.select(table.c.id)).scalars().all()
        if ids:
            connection.execute(
                table.update().where(table.c.id == sa.bindparam('row_id')).values(personal_salt=sa.bindparam('salt')),
                [{'row_id': row_id, 'salt': secrets.token_hex(32)} for row_id in ids],
            )


def downgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_column('personal_salt')
