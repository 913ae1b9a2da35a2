"""The operations side of one controller process, built by the composition root.

Live flags (polled), the booking-service breaker (its alerts and audit
entries), the metrics, the heartbeat in the controller registry
(``ivr.ops.heartbeat``), and the ops HTTP server (API, console, health,
``/metrics``) on ``settings.ports.ops_http``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from ivr.booking.source import SlotSource
from ivr.chat.store import ConversationStore
from ivr.ops.breaker import CLOSED, OPEN, BreakerSlotSource, CircuitBreaker
from ivr.ops.controllers import ControllerIdentity, ControllerStatus, ControllerStore
from ivr.ops.flags import (
    BREAKER_OPEN_SECONDS,
    BREAKER_THRESHOLD,
    FlagRegistry,
    missing_platform_flags,
)
from ivr.ops.heartbeat import Heartbeat
from ivr.ops.live import LiveFlags
from ivr.ops.metrics import Metrics
from ivr.ops.service import FlagService
from ivr.ops.store import Change, OpsStore, utcnow
from ivr.settings import Settings
from ivr.store import Database, StoreUnavailable
from ivr.store.records import CallRecordStore

if TYPE_CHECKING:
    from ivr.ops.api import ApiExtension

logger = logging.getLogger(__name__)

BREAKER_ALERT = "booking_breaker_open"
RULE_ALERT = "flag_rule_broken"


class OpsRuntime:
    def __init__(
        self, settings: Settings, db: Database, registry: FlagRegistry, metrics: Metrics
    ) -> None:
        """``registry`` is the line's flags; it must include the platform's own
        (``ivr.ops.flags.PLATFORM_FLAGS``: the incident switch, the breaker's
        thresholds), else ValueError naming the missing ones."""
        if missing := missing_platform_flags(registry):
            raise ValueError(f"the line's flags lack the platform's: {', '.join(missing)}")
        self.settings = settings
        self.metrics = metrics
        self.store = OpsStore(db)
        self.service = FlagService(self.store, registry)
        self.live = LiveFlags(self.store, registry, on_reload=self._flags_reloaded)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.source_id = f"{settings.instance}@{self.host}:{self.pid}"
        self.started_at = utcnow()
        self.breaker: CircuitBreaker | None = None
        self.heartbeat: Heartbeat | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._http: web.AppRunner | None = None
        # The breaker's alert writes and the stop's last beat, one at a time: the
        # last beat resolves this process's open alerts, so none may land after it.
        self._alerts_turn = asyncio.Lock()
        self._stopping = False

    async def start(self) -> None:
        """First read of the flags (defaults if the database is down), then keep polling."""
        await self.live.refresh()
        await self.check_rules()
        self._poller = asyncio.create_task(self.live.run(), name="flags-poller")

    def start_heartbeat(
        self, active_calls: Callable[[], int], ari_connected: Callable[[], bool]
    ) -> Heartbeat:
        """Report this process in the controller registry (``ivr.ops.controllers``)
        until ``stop``: its flags revision and breaker, and from the controller its
        calls in progress and whether its ARI connection is up. Every controller
        process starts one, the voice workers too (``ivr.controller``)."""
        identity = ControllerIdentity(
            self.source_id, self.settings.instance, self.host, self.pid,
            self.settings.app_name, self.started_at,
        )  # fmt: skip

        def status() -> ControllerStatus:
            breaker = self.breaker.state if self.breaker is not None else None
            return ControllerStatus(
                self.live.snapshot.revision, breaker, active_calls(), ari_connected()
            )

        self.heartbeat = Heartbeat(ControllerStore(self.store.db), identity, status)
        self._heartbeat_task = asyncio.create_task(self.heartbeat.run(), name="heartbeat")
        return self.heartbeat

    def _flags_reloaded(self, old: int, new: int) -> None:
        self.metrics.flags_reloaded(old, new)
        if self.heartbeat is not None:
            self.heartbeat.beat_soon()  # the console sees the new revision at once

    async def check_rules(self) -> None:
        """Alert when the stored flags, under this process's defaults, break a rule.

        Changes are refused before they break a rule (``FlagService``), but the
        defaults come with the deployment's reference tables, which no change
        judges: a new ``eligibility.yaml`` can invert the age band under a stored
        ``age_max``. The alert (kind ``flag_rule_broken``, the Spanish refusal
        message as detail) shows in the console and ``/api/alerts``; it is resolved
        by the next start that finds the rules hold (the alert's source is the
        instance, not the process, so that a later process can resolve it; one open
        alert at a time). The database being down is logged, not raised: the line
        still serves.
        """
        now, source = utcnow(), self.settings.instance
        try:
            violation = await self.service.broken_rule()
            await self.store.resolve_alerts(RULE_ALERT, source, now)
            if violation is not None:
                logger.error("flag rules broken by the stored flags: %s", violation.message)
                await self.store.raise_alert(RULE_ALERT, source, violation.message, now)
        except StoreUnavailable as exc:
            logger.error("flag rules not checked: %s", exc)

    def guard(self, source: SlotSource) -> BreakerSlotSource:
        """The booking source behind a circuit breaker whose thresholds are live flags."""
        self.breaker = CircuitBreaker(
            threshold=lambda: self.live.number(BREAKER_THRESHOLD),
            open_seconds=lambda: float(self.live.number(BREAKER_OPEN_SECONDS)),
            probe=source.health,
            on_transition=self._breaker_moved,
            on_failure=lambda kind: self.metrics.booking_errors.labels(kind=kind).inc(),
        )
        self.metrics.set_breaker_state(CLOSED)
        return BreakerSlotSource(source, self.breaker)

    async def _breaker_moved(self, old: str, new: str, detail: str) -> None:
        self.metrics.set_breaker_state(new)
        if self.heartbeat is not None:
            self.heartbeat.beat_soon()
        async with self._alerts_turn:
            if self._stopping:
                # The row is (about to be) marked stopped, which resolves this
                # process's alerts: a new one would stay open until the row is pruned.
                logger.warning("booking breaker %s → %s while stopping: no alert (%s)",
                               old, new, detail)  # fmt: skip
                return
            now = utcnow()
            try:
                if old == CLOSED and new == OPEN:
                    await self.store.raise_alert(BREAKER_ALERT, self.source_id, detail, now)
                    await self.store.record_event(
                        Change("system:breaker", "system", "breaker_open", detail), now
                    )
                elif new == CLOSED:
                    await self.store.resolve_alerts(BREAKER_ALERT, self.source_id, now)
                    await self.store.record_event(
                        Change("system:breaker", "system", "breaker_closed", detail), now
                    )
            except StoreUnavailable as exc:
                logger.error("booking breaker %s → %s not recorded: %s", old, new, exc)

    async def serve_http(
        self,
        readiness: Callable[[], Mapping[str, bool]],
        mount: Callable[[web.Application], None] | None = None,
        chats: ConversationStore | None = None,
        calls: CallRecordStore | None = None,
        extensions: Sequence[ApiExtension] = (),
    ) -> None:
        """Serve the ops app; ``mount`` adds the composition root's own routes to it
        first (the WhatsApp webhook and the demo chat page, ``ivr.controller``);
        ``chats``: the assistant's conversations, for the console's chats and the
        hand-off routes (without it they answer 404); ``calls``: the call records,
        for the console's calls panel (``/api/calls/summary``, 404 without);
        ``extensions``: the parts' routes and console pages (``ivr.ops.api.ApiExtension``)."""
        from ivr.ops.api import build_ops_app, start_ops_site

        app = build_ops_app(
            self.service,
            self.metrics,
            readiness=readiness,
            breaker=self.breaker.describe if self.breaker else None,
            chats=chats,
            calls=calls,
            extensions=extensions,
        )
        if mount is not None:
            mount(app)
        self._http = await start_ops_site(app, self.settings.host, self.settings.ports.ops_http)

    async def stop(self) -> None:
        """The poller, the breaker's probe and the heartbeat end; the registry row is
        marked stopped last, which resolves this process's open alerts. A breaker
        transition being recorded (a caller's or the probe's) is waited for, and none
        is recorded after (a call still failing on the booking service while the
        controller stops is logged); then the probe ends and no new one starts."""
        self.live.stop()
        if self._poller is not None:
            await self._poller
        async with self._alerts_turn:
            self._stopping = True
        if self.breaker is not None:
            await self.breaker.close()
        if self.heartbeat is not None and self._heartbeat_task is not None:
            self.heartbeat.stop()
            await self._heartbeat_task
            await self.heartbeat.mark_stopped()
        if self._http is not None:
            await self._http.cleanup()
