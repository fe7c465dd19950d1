"""Browser sessions held on the server (logout and an idle timeout end them; a password reset or a
deactivation deletes them) instead of a version number in a signed cookie; API tokens get a name and the
time they were last used, for the users page and `pbx tokens`.

Revision ID: d13a0e5e5510
Revises: d13b0c4ed520
Create Date: 2026-12-01 02:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd13a0e5e5510'
down_revision = 'd13b0c4ed520'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "pbx_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("pbx_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_pbx_sessions_user_id", "pbx_sessions", ["user_id"])
    op.create_index("ix_pbx_sessions_last_seen_at", "pbx_sessions", ["last_seen_at"])
    with op.batch_alter_table("pbx_api_tokens") as batch:
        # Tokens made before they had names.
        batch.add_column(sa.Column("name", sa.String(80), nullable=False, server_default="API token"))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("pbx_api_tokens") as batch:
        batch.alter_column("name", server_default=None)
    # Every cookie signed with a version is refused from now on (it names no session row): all sign in again.
    with op.batch_alter_table("pbx_users") as batch:
        batch.drop_column("session_version")


def downgrade():
    with op.batch_alter_table("pbx_users") as batch:
        batch.add_column(sa.Column("session_version", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("pbx_api_tokens") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("name")
    op.drop_index("ix_pbx_sessions_last_seen_at", "pbx_sessions")
    op.drop_index("ix_pbx_sessions_user_id", "pbx_sessions")
    op.drop_table("pbx_sessions")
