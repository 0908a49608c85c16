"""Titles, authors and tags are plain text: clean the ones stored with markup.

Articles collected before titles were made plain text may hold markup such as
``Clinical trial roundup <script>...</script>`` or ``Fish &amp; chips``. This data
migration runs them through the same :func:`publisher.compose.sanitize.plain_text` the collectors
now use, and, when it changed a row, forgets the feed writer's fingerprints (they hash
content, not titles) so the next build rewrites the feeds. No schema change.

Revision ID: 0006_plain_titles
Revises: 0005
Create Date: 2026-12-02
"""

import json

import sqlalchemy as sa
from alembic import op

from publisher.compose.sanitize import plain_text

revision = "0006_plain_titles"
down_revision = "0005"
branch_labels = None
depends_on = None

_articles = sa.table(
    "articles",
    sa.column("id", sa.Integer),
    sa.column("title", sa.Text),
    sa.column("author", sa.Text),
    sa.column("tags", sa.Text),
)
_settings = sa.table("settings", sa.column("key", sa.String), sa.column("value", sa.Text))


def _clean_tags(value: str) -> str:
    tags = json.loads(value) if value else []
    cleaned = dict.fromkeys(t for t in (plain_text(str(x)).lower() for x in tags) if t)
    return json.dumps(list(cleaned))


def upgrade() -> None:
    conn = op.get_bind()
    suspects = sa.or_(
        *(column.contains(mark) for column in (_articles.c.title, _articles.c.author,
                                                _articles.c.tags) for mark in ("<", "&"))
    )  # fmt: skip
    rows = conn.execute(
        sa.select(_articles.c.id, _articles.c.title, _articles.c.author, _articles.c.tags).where(
            suspects
        )
    ).all()
    changed = 0
    for row in rows:
        values = {
            "title": plain_text(row.title) or "(untitled)",
            "author": plain_text(row.author or ""),
            "tags": _clean_tags(row.tags) if row.tags and row.tags != "[]" else row.tags,
        }
        if values != {"title": row.title, "author": row.author, "tags": row.tags}:
            conn.execute(sa.update(_articles).where(_articles.c.id == row.id).values(**values))
            changed += 1
    if changed:
        conn.execute(sa.delete(_settings).where(_settings.c.key == "feeds_state"))


def downgrade() -> None:
    # The markup is gone for good; going back leaves the clean titles in place.
    pass
