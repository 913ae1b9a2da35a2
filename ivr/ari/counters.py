"""What the ARI line costs in messages: events in by type, REST requests out by route.

Always on, and cheap on the hot path: one dict increment per event or request
(the route's template is computed when the counters are read, not per
request). The :class:`AriClient` owns one :class:`AriCounters`; the
:class:`EventStream` of the same controller is given it, so one object holds
both directions.

Read three ways:

- ``/metrics``: ``citas_ari_events_total{type}``,
  ``citas_ari_requests_total{method,route}`` and ``citas_ari_calls_total``
  (:class:`AriCountersCollector`, registered by ``ivr serve``);
- ``CITAS_ARI_COUNTS=<file>``: ``ivr serve`` writes :meth:`AriCounters.snapshot`
  there as JSON when it stops (``{pid}`` in the name is replaced by the
  process id; without it a voice worker writes ``<name>.slot<N>.json``: each
  process of a multi-controller ``ivr serve`` writes its own file, sum them);
- :meth:`AriCounters.snapshot` in-process (tests, the benchmark).

Per call means per ``StasisStart``: every channel that entered the application
(callers, and the cases' escalation calls) counts as one call.

>>> c = AriCounters()
>>> c.event("StasisStart"); c.event("ChannelDtmfReceived")
>>> c.request("POST", "/channels/{channelId}/play/{playbackId}")
>>> c.snapshot()["requests"]
{'POST /channels/{id}/play/{id}': 1}
>>> c.snapshot()["per_call"]
{'events': 2.0, 'requests': 1.0}
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "ENV_VAR",
    "AriCounters",
    "AriCountersCollector",
    "route_template",
    "snapshot_path",
]

ENV_VAR = "CITAS_ARI_COUNTS"
CALL_EVENT = "StasisStart"

# Every literal path word of Asterisk 22's ARI (rest-api/api-docs/*.json: the
# resources and their actions). A segment that is not one of them is an id.
ARI_PATH_WORDS = frozenset(
    {
        # resources
        "applications", "asterisk", "bridges", "channels", "deviceStates", "endpoints",
        "events", "mailboxes", "playbacks", "recordings", "sounds",
        # sub-resources and actions
        "addChannel", "answer", "config", "continue", "control", "copy", "dial", "dtmf",
        "dynamic", "eventFilter", "externalMedia", "file", "hold", "info", "live", "logging",
        "modules", "moh", "move", "mute", "ping", "play", "record", "redirect", "reload",
        "removeChannel", "ring", "rotate", "rtp_statistics", "sendMessage", "silence",
        "snoop", "stop", "stored", "subscription", "transfer_progress", "unmute", "user",
        "variable", "videoSource", "create", "pause", "refer",
    }
)  # fmt: skip
_PLACEHOLDER = re.compile(r"\{[^/{}]*\}")


@functools.lru_cache(maxsize=1024)
def route_template(path: str) -> str:
    """The route of one ARI request path, ids replaced by ``{id}``.

    ``path`` is relative to the ARI base URL, either a template as the client
    writes it (``/channels/{channelId}/play/{playbackId}``) or a concrete path
    (``/channels/1700000000.12/play/pb-1``); the query string, if any, is
    dropped. Both give ``/channels/{id}/play/{id}``. A segment is kept when it
    is one of ARI's own path words (``ARI_PATH_WORDS``, from Asterisk 22's
    ``rest-api/api-docs``), else it is an id. Cached: the client has a dozen
    templates.
    """
    path = path.split("?", 1)[0]
    segments = [s for s in path.split("/") if s]
    out = []
    for segment in segments:
        if _PLACEHOLDER.fullmatch(segment) or segment not in ARI_PATH_WORDS:
            out.append("{id}")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def snapshot_path(value: str, pid: int | None = None, *, tag: str = "") -> Path:
    """The snapshot file named by ``CITAS_ARI_COUNTS``: ``{pid}`` becomes the
    process id. Without ``{pid}``, a ``tag`` (a voice worker's ``slot2``) goes
    before the suffix (``counts.json`` -> ``counts.slot2.json``), so the
    processes of one ``ivr serve`` never overwrite each other's file."""
    if "{pid}" in value:
        return Path(value.replace("{pid}", str(os.getpid() if pid is None else pid)))
    path = Path(value)
    return path.with_name(f"{path.stem}.{tag}{path.suffix}") if tag else path


class AriCounters:
    """Events received by type and requests sent by (method, path template)."""

    def __init__(self) -> None:
        self.events: dict[str, int] = {}
        # Keyed by the client's template as given; route_template() at read time.
        self._requests: dict[tuple[str, str], int] = {}
        self.over_websocket = 0  # of the requests, those sent on the event websocket

    def event(self, event_type: str) -> None:
        """One event of ``event_type`` (the ARI ``type`` field) came in."""
        self.events[event_type] = self.events.get(event_type, 0) + 1

    def request(self, method: str, path: str, *, websocket: bool = False) -> None:
        """One request went out: ``method`` (``POST``) and the path or its template;
        ``websocket``: on the event websocket (``ivr.ari.wsrest``), not HTTP."""
        key = (method, path)
        self._requests[key] = self._requests.get(key, 0) + 1
        self.over_websocket += websocket

    @property
    def calls(self) -> int:
        """Calls seen so far: the ``StasisStart`` events."""
        return self.events.get(CALL_EVENT, 0)

    def requests(self) -> dict[tuple[str, str], int]:
        """Requests by (method, route template), e.g. ``("POST", "/channels/{id}/answer")``."""
        out: dict[tuple[str, str], int] = {}
        for (method, path), n in self._requests.items():
            key = (method, route_template(path))
            out[key] = out.get(key, 0) + n
        return out

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy: ``calls``, ``events`` ``{type: n}``, ``requests``
        ``{"POST /channels/{id}/play/{id}": n}``, ``requests_over_websocket`` (how
        many of them went on the event websocket), ``per_call`` (``events``,
        ``requests``: totals over ``calls``, ``None`` before the first call)
        and ``per_call_by_type``/``per_call_by_route`` (the same per type/route)."""
        calls = self.calls
        events = dict(sorted(self.events.items()))
        requests = {f"{m} {r}": n for (m, r), n in sorted(self.requests().items())}

        def per(n: int) -> float | None:
            return round(n / calls, 3) if calls else None

        return {
            "calls": calls,
            "events": events,
            "requests": requests,
            "requests_over_websocket": self.over_websocket,
            "per_call": {
                "events": per(sum(events.values())),
                "requests": per(sum(requests.values())),
            },
            "per_call_by_type": {k: per(v) for k, v in events.items()},
            "per_call_by_route": {k: per(v) for k, v in requests.items()},
        }

    def write(self, path: Path) -> None:
        """Write :meth:`snapshot` (with ``pid`` and ``written_at``) to ``path`` atomically."""
        data = {
            **self.snapshot(),
            "pid": os.getpid(),
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def write_if_asked(
        self, environ: Mapping[str, str] | None = None, *, tag: str = ""
    ) -> Path | None:
        """Write the snapshot where ``CITAS_ARI_COUNTS`` says (:func:`snapshot_path`,
        ``tag`` for a voice worker); the path, or None when unset."""
        value = (os.environ if environ is None else environ).get(ENV_VAR, "")
        if not value:
            return None
        path = snapshot_path(value, tag=tag)
        self.write(path)
        return path


class AriCountersCollector(Collector):
    """``/metrics`` view of one :class:`AriCounters`, read at scrape time."""

    def __init__(self, counters: AriCounters) -> None:
        self.counters = counters

    def collect(self) -> Iterable[Metric]:
        events = CounterMetricFamily(
            "citas_ari_events",
            "ARI events received on the application's websocket, by type.",
            labels=["type"],
        )
        for event_type, n in sorted(self.counters.events.items()):
            events.add_metric([event_type], n)
        yield events
        requests = CounterMetricFamily(
            "citas_ari_requests",
            "ARI REST requests sent, by method and route template (ids as {id}).",
            labels=["method", "route"],
        )
        for (method, route), n in sorted(self.counters.requests().items()):
            requests.add_metric([method, route], n)
        yield requests
        yield CounterMetricFamily(
            "citas_ari_requests_websocket",
            "ARI REST requests sent on the event websocket (REST over WebSocket).",
            value=self.counters.over_websocket,
        )
        yield CounterMetricFamily(
            "citas_ari_calls",
            "Channels that entered the application (StasisStart events).",
            value=self.counters.calls,
        )
