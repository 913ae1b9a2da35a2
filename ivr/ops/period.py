"""The period of a report: the ``from`` / ``to`` days of a query, as local instants.

Shared by the reports of every part (cases' Tablero, the desk's reports): a day is a
day of the line's time zone (America/Bogota for the citas line), so "30 Nov" is
``[30 Nov 00:00, 1 Dec 00:00)`` there, whatever the server's zone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from ivr.ops.api import ApiError

DEFAULT_DAYS = 7  # a period with no ``from``: the week that ends on ``to``


def local_period(
    params: Mapping[str, Any],
    tz: tzinfo,
    today: Callable[[], date],
    longest: timedelta,
    default_days: int = DEFAULT_DAYS,
) -> tuple[datetime, datetime]:
    """``[from 00:00, to+1 00:00)`` in ``tz`` from the (schema-checked) ISO days
    ``params["from"]`` / ``params["to"]``; ``to`` defaults to ``today()``, ``from`` to
    ``default_days`` days ending on ``to``.

    Raises ``ApiError`` 422 ``invalid_parameter`` (Spanish, field ``from``) when the
    period ends before it starts or is longer than ``longest`` (whole days).

    >>> from zoneinfo import ZoneInfo
    >>> start, end = local_period({"from": "2026-11-30", "to": "2026-11-30"},
    ...                           ZoneInfo("America/Bogota"), date.today, timedelta(days=31))
    >>> start.isoformat(), end.isoformat()
    ('2026-11-30T00:00:00-05:00', '2026-12-01T00:00:00-05:00')
    """
    last = date.fromisoformat(params["to"]) if "to" in params else today()
    first = (
        date.fromisoformat(params["from"])
        if "from" in params
        else last - timedelta(days=default_days - 1)
    )
    if first > last:
        raise ApiError(422, "invalid_parameter", "el periodo termina antes de empezar",
                       [{"field": "from", "message": "posterior a «to»"}])  # fmt: skip
    if (last - first).days + 1 > longest.days:
        raise ApiError(422, "invalid_parameter", f"el periodo es de {longest.days} días como máximo",
                       [{"field": "from", "message": f"a lo sumo {longest.days} días antes de «to»"}])  # fmt: skip
    start = datetime.combine(first, time(0), tz)
    return start, datetime.combine(last + timedelta(days=1), time(0), tz)
