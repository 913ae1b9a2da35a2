"""resolve the booking-breaker alerts of controller processes the registry no longer knows

Revision ID: 0016
Revises: 0015

A controller's own alerts (``booking_breaker_open``, source ``instance@host:pid``)
end with the process (``ivr.ops.controllers``): at its clean stop, when a new
process takes its key over, and when its registry row is pruned. Two kinds of
alert were left open for good before that rule:

- those raised before the registry (0015) by processes that are long gone: no row
  was ever written for them, so no prune can resolve them;
- those of rows pruned before the prune resolved its rows' alerts.

This data change resolves, at the time it runs, every open ``booking_breaker_open``
alert whose source has no row in ``ops_controllers``. Alerts of the processes that
have a row, and a node's alerts (source: the bare instance, a broken flag rule),
are left as they are. A controller still running code older than 0015 while its
database is upgraded (a rolling upgrade) has no row either: its open breaker alert
is resolved too, and while that breaker stays open the console shows no alert for
it, until the breaker closes and opens again or the controller is replaced.

The kind's name and the process source's shape are copied here, as in 0004, so
the migration never changes with the code. The downgrade leaves the rows resolved:
which alerts this revision resolved is not recorded, and re-opening them would
show processes that are gone as failing.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BREAKER_ALERT = "booking_breaker_open"  # ivr.ops.runtime.BREAKER_ALERT
PROCESS_SOURCE = "%@%:%"  # instance@host:pid (ivr.ops.runtime.OpsRuntime.source_id)


def upgrade() -> None:
    alerts = sa.table(
        "ops_alerts",
        sa.column("kind", sa.String),
        sa.column("source", sa.String),
        sa.column("resolved_at", sa.DateTime(timezone=True)),
    )
    controllers = sa.table("ops_controllers", sa.column("source_id", sa.String))
    op.get_bind().execute(
        alerts.update()
        .where(
            alerts.c.resolved_at.is_(None),
            alerts.c.kind == BREAKER_ALERT,
            alerts.c.source.like(PROCESS_SOURCE),
            alerts.c.source.not_in(sa.select(controllers.c.source_id)),
        )
        .values(resolved_at=datetime.now(UTC))
    )


def downgrade() -> None:
    pass  # the module's docstring: resolved alerts stay resolved
