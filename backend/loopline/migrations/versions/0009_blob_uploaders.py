"""blob uploads per user: who proved they hold a photo's bytes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 09:00:00.000000

Each user now uploads a hash on their own (`blob_upload`), and a complete upload is the
proof that its user holds the bytes. The first uploader of every blob the server holds
gets that proof here. Uploads still under way cannot be carried over: their bytes sit
where the old layout kept them, so they are dropped and their devices start them again
(they learn so from HEAD's 404); the old partial files are left for an operator to
delete (`<data dir>/blobs/partial/<sha256>`, the names without a dot). A `blob` row now
records settled content only, so the rows of those uploads and of bytes that did not
match their hash go. Attachments keep their state: links made before this revision are
not checked again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import loopline.core.types
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('blob_upload',
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('mime', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', loopline.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', loopline.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('partial', 'complete', 'rejected')", name=op.f('ck_blob_upload_state_valid')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_blob_upload_user_id_user')),
    sa.PrimaryKeyConstraint('sha256', 'user_id', name=op.f('pk_blob_upload'))
    )
    with op.batch_alter_table('blob_upload', schema=None) as batch_op:
        batch_op.create_index('ix_blob_upload_state_created_at', ['state', 'created_at'], unique=False)

    blob = sa.table(
        'blob',
        sa.column('sha256', sa.String),
        sa.column('size', sa.Integer),
        sa.column('mime', sa.String),
        sa.column('state', sa.String),
        sa.column('reason_code', sa.String),
        sa.column('uploaded_by', sa.String),
        sa.column('created_at', loopline.core.types.UTCDateTime(timezone=True)),
        sa.column('completed_at', loopline.core.types.UTCDateTime(timezone=True)),
    )
    upload = sa.table(
        'blob_upload',
        *(sa.column(name) for name in ('sha256', 'user_id', 'size', 'mime', 'state', 'created_at', 'completed_at')),
    )
    unsettled = sa.or_(blob.c.state == 'partial', blob.c.reason_code == 'hash_mismatch')
    op.execute(blob.delete().where(unsettled))
    op.execute(
        upload.insert().from_select(
            ['sha256', 'user_id', 'size', 'mime', 'state', 'created_at', 'completed_at'],
            sa.select(
                blob.c.sha256,
                blob.c.uploaded_by,
                blob.c.size,
                blob.c.mime,
                sa.literal('complete'),
                blob.c.created_at,
                blob.c.completed_at,
            ).where(blob.c.uploaded_by.is_not(None)),
        )
    )
    with op.batch_alter_table('blob', schema=None) as batch_op:
        batch_op.drop_index('ix_blob_state_created_at')


def downgrade() -> None:
    with op.batch_alter_table('blob', schema=None) as batch_op:
        batch_op.create_index('ix_blob_state_created_at', ['state', 'created_at'], unique=False)

    with op.batch_alter_table('blob_upload', schema=None) as batch_op:
        batch_op.drop_index('ix_blob_upload_state_created_at')

    op.drop_table('blob_upload')
