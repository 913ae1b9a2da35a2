"""The composition root: builds the ARI client, the event stream, the router,
the database and the flow engine, passes them by constructor, and runs them.

Call handling rules that keep callers out of silence:
- an unknown flow, an ARI failure or a bug mid-call sends the caller to the
  agents (the dialplan's VDN) with a reason, never to a dead line;
- a call found in our app after a reconnect (we lost its state) is sent to
  the agents too;
- on shutdown, calls get a grace period, then are handed to the agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ivr.ari import (
    EVENT_FILTER,
    AriClient,
    AriError,
    CallContext,
    CallRouter,
    Channel,
    Event,
    EventStream,
)
from ivr.ari.counters import AriCounters, AriCountersCollector
from ivr.booking.source import SlotSource
from ivr.cases.setup import case_store
from ivr.channel import (
    QUEUE_KEY,
    CallEnded,
    CallerHungUp,
    CallTransferred,
    ChannelError,
    EventsLost,
    HandOff,
    Phrase,
)
from ivr.flow.engine import Action, CallState, FlowEngine
from ivr.flow.loader import FlowLoader, load_flows
from ivr.flow.model import Flow
from ivr.flow.nodes.transfer import CONTEXT_VARIABLES
from ivr.httpsession import OwnedSession
from ivr.incidents.http import incident_extension_for
from ivr.line import Line
from ivr.masking import mask_number
from ivr.multi.adopter import ADOPTED_ARG
from ivr.ops.api import ApiExtension
from ivr.ops.flags import FlagReader, FlagRegistry
from ivr.ops.metrics import Metrics
from ivr.prompts import load_prompt_texts
from ivr.reaction import ReactionTimer
from ivr.settings import Settings
from ivr.sms.gateways import FileSmsGateway, HttpSmsGateway, SmsGateway
from ivr.sms.outbox import SmsOutbox
from ivr.sms.worker import SmsWorker
from ivr.store import CallRecordStore, Database
from ivr.store.changes import ChangeFeed
from ivr.store.db import StoreUnavailable
from ivr.store.records import CallRecord
from ivr.surveys.chat import SurveyReplies
from ivr.surveys.store import CaseEvents, SurveyStore
from ivr.text.http import keyword_extension
from ivr.text.keyword_store import KeywordStore
from ivr.text.setup import text_analysis
from ivr.voice import VoiceChannel

if TYPE_CHECKING:
    from ivr.cases.backoffice import Backoffice
    from ivr.chat.callref import CallReference
    from ivr.chat.service import ChatService
    from ivr.chat.store import ConversationStore
    from ivr.citas.reference import Reference
    from ivr.desk.ami import DeskAmi
    from ivr.desk.wiring import DeskPop
    from ivr.escalation.call import AriEscalationCalls
    from ivr.escalation.monitor import SlaMonitor
    from ivr.ops.api import ApiExtension
    from ivr.ops.runtime import OpsRuntime
    from ivr.surveys.worker import SurveyWorker

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10.0
# The keys of the flow's context a rescue carries to the agents: a transfer's
# (ivr.flow.nodes.transfer), nothing else read back from the channel.
RESCUE_CONTEXT = frozenset({"segment", *CONTEXT_VARIABLES})
# The end reason of a record closed by the controller that adopted its call.
CONTROLLER_LOST = "controller_lost"


def load_line(settings: Settings) -> Line:
    """The line this deployment serves: the citas line, from ``settings.citas_dir``.

    Raises ``ConfigError`` naming file, line and field of a bad reference table."""
    from ivr.citas.line import citas_line

    return citas_line(settings.citas_dir)


def flow_loader(
    flags: FlagRegistry | None = None, settings: Settings | None = None, line: Line | None = None
) -> FlowLoader:
    """A loader that knows every prompt (``settings.prompts_file``), action
    outcome, committing action and operations flag of ``line`` (default: the
    line of ``settings``; its flags unless ``flags`` is given). ``settings``
    defaults to the shipped files."""
    settings = settings or Settings()
    line = line or load_line(settings)
    return FlowLoader(
        load_prompt_texts(settings.prompts_file),
        line.action_outcomes,
        (flags or line.flag_registry()).names(),
        line.commits,
    )


def load_all_flows(
    settings: Settings | None = None, flags: FlagRegistry | None = None, line: Line | None = None
) -> dict[str, Flow]:
    """Every flow in ``settings.flows_dir`` (default: the shipped flows), by name."""
    settings = settings or Settings()
    return load_flows(settings.flows_dir, flow_loader(flags, settings, line))


@dataclass
class Controller:
    settings: Settings
    client: AriClient
    records: CallRecordStore
    flows: Mapping[str, Flow]
    engine: FlowEngine
    line: Line
    metrics: Metrics = field(default_factory=Metrics)
    reaction: ReactionTimer = field(default_factory=ReactionTimer)
    # Cases' escalation calls (ivr.escalation.call), when cases are enabled.
    escalation: AriEscalationCalls | None = None
    # Controller processes on this Asterisk (Settings.controllers): set as the global
    # dialplan variable CITAS_CONTROLLERS at every connect ([citas-ivr] spreads calls
    # over that many slots); None: not set (a controller outside `ivr serve`).
    controllers: int | None = None
    router: CallRouter = field(init=False)
    stream: EventStream = field(init=False)

    def __post_init__(self) -> None:
        self.router = CallRouter(self.client, self.handle_call, on_reject=self.reject)
        self.stream = EventStream(
            self.settings.ari_url,
            self.settings.ari_user,
            self.settings.ari_password,
            self.settings.app_name,
            self.dispatch,
            on_connected=self.reconcile,
            counters=self.client.counters,  # events and requests in one AriCounters
        )
        self.metrics.active_calls.set_function(lambda: self.router.active_calls)
        if self.settings.ari_rest == "websocket":
            self.client.websocket = self.stream.rest  # used once the filter is set

    async def dispatch(self, ev: Event) -> None:
        """The event stream's ``on_event``: escalation calls see their channel's end
        (an unanswered call never enters Stasis), then the router routes it."""
        if self.escalation is not None:
            await self.escalation.on_event(ev)
        await self.router.dispatch(ev)

    async def handle_call(self, ctx: CallContext) -> None:
        """One call, from its StasisStart: its one INFO line at the start (the router's
        is DEBUG), then the escalation's or the flow's handler."""
        if self.escalation is not None and self.escalation.handles(ctx):
            logger.info("call %s: escalation resumed=%s", ctx.channel_id, ctx.resumed)
            await self.escalation.handle(ctx)
            return
        if ctx.args[-1:] == (ADOPTED_ARG,):  # moved here from a dead controller's app
            ctx.args, ctx.resumed, adopted = ctx.args[:-1], True, True
        else:
            adopted = False
        flow_name = ctx.args[0] if ctx.args else self.line.name
        sip_call_id = ctx.args[1] if len(ctx.args) > 1 else None
        caller = ctx.channel.caller.number or None
        logger.info(
            "call %s: flow=%s caller=%s resumed=%s",
            ctx.channel_id,
            flow_name,
            mask_number(caller),
            ctx.resumed,
        )
        interrupted = 0
        if ctx.resumed:
            # Whoever adopts a call closes the record its dead controller left open
            # (issue 13), before opening its own under the same channel.
            try:
                interrupted = await self.records.interrupt_open(
                    ctx.channel_id, reason=CONTROLLER_LOST
                )
            except StoreUnavailable as exc:  # never the caller's problem: rescue goes on
                logger.warning("call %s: old record not closed: %s", ctx.channel_id, exc)
        record = await self._open_record(ctx, flow_name, sip_call_id, caller)
        channel = VoiceChannel(
            ctx, line=self.line.voice, reaction=self.reaction, known_playback_ids=not ctx.resumed
        )
        reason = "flow_end"
        try:
            if ctx.resumed:
                record.step("resumed_after_reconnect", adopted=adopted, interrupted=interrupted)
                if not adopted:  # restarted in place: the dead one's prompt still plays
                    await channel.stop_inherited_playbacks()
                await self._rescue(channel, record, "ivr-restarted")
                return
            flow = self.flows.get(flow_name)
            if flow is None:
                logger.error("call %s: no flow %r; sending to agents", ctx.channel_id, flow_name)
                record.step("error", error=f"unknown flow {flow_name}")
                await self._rescue(channel, record, "ivr-unknown-flow")
                return
            await self.engine.run(CallState(channel, record, flow))
        except CallerHungUp:
            reason = "caller_hangup"
            if record.outcome is None:
                record.outcome = "abandoned"
            record.step("caller_hangup")
        except CallTransferred:
            reason = "transferred"
        except EventsLost as exc:
            # Like a restart for the caller: where the dialogue stood is unsure.
            reason = "events_lost"
            logger.warning("call %s: %s; sending to agents", ctx.channel_id, exc)
            record.step("events_lost")
            await self._rescue(channel, record, "ivr-restarted")
        except ChannelError as exc:
            reason = "channel_error"
            logger.error("call %s: %s", ctx.channel_id, exc)
            record.step("error", error=str(exc))
            await self._rescue(channel, record, "ivr-error")
        except asyncio.CancelledError:
            reason = "shutdown"
            record.step("shutdown")
            await asyncio.shield(self._rescue(channel, record, "ivr-shutdown"))
            raise
        except Exception as exc:
            # A bug in a flow action must cost one call's self-service, never the caller.
            reason = "internal_error"
            logger.exception("call %s: unexpected error", ctx.channel_id)
            record.step("error", error=repr(exc))
            await self._rescue(channel, record, "ivr-error")
        finally:
            await asyncio.shield(self._close_record(record, reason))

    async def _rescue(self, channel: VoiceChannel, record: CallRecord, reason: str) -> None:
        """Hand the caller to the agents with a spoken message; best effort.

        The message is the line's prompt ``service_unavailable_agent``; the channel
        variables and the agents' context are the line's (``line.yaml`` ``voice``,
        which the voice channel renders). The queue is the one the flow had chosen
        (``QUEUE_KEY`` of its annotated context, when it is one of the line's
        ``agent_queues``), else the line's ``default_vdn``."""
        vdn = self.engine.default_vdn
        try:
            # EventsLost here (another reconnect): hand over without waiting for the end.
            with contextlib.suppress(CallEnded, EventsLost):
                await channel.say(
                    [Phrase("prompt", "service_unavailable_agent")], interruptible=False
                )
            # What the flow knew before it was cut off (segment, affiliate, CUPS, its
            # queue: its annotate), even when another controller set it; else the
            # segment is unknown and the queue the default.
            known = await channel.annotated()
            if known.get(QUEUE_KEY) in self.line.agent_queues:
                vdn = known[QUEUE_KEY]
            context = {"segment": "unknown"} | {k: v for k, v in known.items() if k in RESCUE_CONTEXT}
            await channel.hand_off(HandOff(vdn, reason, context))
        except CallTransferred:
            record.outcome = "transferred"
            record.step("transfer", vdn=vdn, reason=reason)
        except CallEnded:
            pass
        except ChannelError as exc:
            logger.error("call %s: cannot hand over to agents: %s", channel.call_id, exc)
            record.outcome = record.outcome or "failed"

    async def _open_record(
        self, ctx: CallContext, flow: str, sip_call_id: str | None, caller: str | None
    ) -> CallRecord:
        # Never fails: with the database down the record (and its id, which bookings
        # and the SMS dedupe key use mid-call) lives in the store's buffer.
        return await self.records.open(
            channel_id=ctx.channel_id, flow=flow, sip_call_id=sip_call_id, caller_number=caller
        )

    async def _close_record(self, record: CallRecord, reason: str) -> None:
        self.metrics.calls.labels(outcome=record.outcome or "completed").inc()
        await self.records.close(record, outcome=record.outcome or "completed", reason=reason)

    async def reject(self, channel: Channel) -> None:
        """A call arriving while we shut down goes straight to the agents."""
        voice = self.line.voice
        try:
            await self.client.set_variable(channel.id, voice.variable("reason"), "ivr-shutdown")
            await self.client.continue_in_dialplan(
                channel.id, context=voice.agent_context, extension=self.engine.default_vdn
            )
        except AriError as exc:
            logger.warning("cannot reject %s: %s", channel.id, exc)

    async def reconcile(self) -> None:
        """After every (re)connect: Asterisk does not replay events we missed.

        Channels still in our app that we do not drive are adopted (and sent
        to the agents, since their dialogue state is lost); calls we still drive
        are told their events may be lost, and go to the agents too.
        """
        if self.controllers is not None:
            try:
                await self.client.set_global_variable("CITAS_CONTROLLERS", str(self.controllers))
            except AriError as exc:
                logger.warning("reconcile: cannot set CITAS_CONTROLLERS: %s", exc)
        # Calls we still drive missed whatever was sent while we were away.
        if lost := self.router.events_lost():
            logger.warning("reconcile: %d running call(s) may have lost events", lost)
        await self._set_event_filter()
        try:
            apps = await self.client.list_applications()
        except AriError as exc:
            logger.warning("reconcile: cannot list applications: %s", exc)
            return
        ours = next((a for a in apps if a.get("name") == self.settings.app_name), None)
        channel_ids = [c for c in (ours or {}).get("channel_ids", []) if c not in self.router.calls]
        for channel_id in channel_ids:
            try:
                channel = await self.client.get_channel(channel_id)
            except AriError:
                continue
            logger.warning("reconcile: adopting orphan channel %s", channel_id)
            await self.router.adopt(channel, await self._stasis_args(channel_id))
        logger.info(
            "connected to ARI app %s; %d orphan call(s) adopted",
            self.settings.app_name,
            len(channel_ids),
        )

    async def orphan_args(self, channel_id: str) -> tuple[str, ...]:
        """Stasis arguments for a dead controller's channel moved here
        (``ivr.multi.adopter``): (flow, SIP Call-ID), the line's flow when they
        cannot be read, or ``()`` for an escalation call (only the main process's
        SLA monitor drives those: the adopter hangs it up)."""
        from ivr.escalation.order import CHANNEL_PREFIX

        if channel_id.startswith(CHANNEL_PREFIX):
            return ()
        return await self._stasis_args(channel_id) or (self.line.name,)

    async def _set_event_filter(self) -> None:
        """Only the event types the IVR handles (``ivr.ari.EVENT_FILTER``), at every
        connect: a restarted Asterisk has forgotten the filter. Best effort: without
        it the app gets every event, which the parser ignores (slower, still right),
        and the requests stay on HTTP (``ivr.ari.wsrest``: only a connection whose
        filter lets ``RESTResponse`` through, and whose probe came back, carries them)."""
        try:
            await self.client.set_event_filter(self.settings.app_name, EVENT_FILTER)
        except AriError as exc:
            logger.warning("cannot set the ARI event filter of %s: %s", self.settings.app_name, exc)
            return
        # RESTResponse is let through now: requests go over the websocket once a
        # probe came back over it (ivr.ari.wsrest; else they stay on HTTP).
        if self.client.websocket is not None and not await self.client.websocket.probe(
            self.settings.request_timeout
        ):
            logger.warning(
                "ARI REST over WebSocket did not answer (Asterisk before 22.4?): "
                "requests of %s stay on HTTP",
                self.settings.app_name,
            )

    async def _stasis_args(self, channel_id: str) -> tuple[str, ...]:
        """An orphan's (flow, SIP Call-ID), from the variables the dialplan set
        before Stasis: its new record stays findable by the SIP Call-ID. An
        orphan escalation call (``esc-…``) is one again (its handler hangs it up:
        a support person is never sent to the callers' agents)."""
        from ivr.escalation.call import ESCALATION_ARG
        from ivr.escalation.order import CHANNEL_PREFIX

        if channel_id.startswith(CHANNEL_PREFIX):
            return (ESCALATION_ARG,)
        try:
            voice = self.line.voice
            flow = await self.client.get_variable(channel_id, voice.dialplan_variable("flow"))
            sip_call_id = await self.client.get_variable(
                channel_id, voice.dialplan_variable("call_id")
            )
        except AriError as exc:
            logger.warning("reconcile: no Stasis arguments for %s: %s", channel_id, exc)
            return ()
        flow = flow or self.line.name
        return (flow, sip_call_id) if sip_call_id else (flow,)


def ops_extensions(
    settings: Settings, db: Database, *, keywords: ApiExtension | None = None,
    levels: ApiExtension | None = None,
) -> list[ApiExtension]:
    """The parts' ops-API routes and console pages over ``db`` (``ivr serve`` and
    ``ivr ops serve``): one line per part. ``keywords``: the controller's own (it
    shares the store with the analysis worker); ``levels``: the controller's own (with
    its AMI connection; without it a voice escalation answers 503)."""
    from ivr.citas.desk import TRANSFER_REASONS
    from ivr.citas.reference import load_line
    from ivr.citas.script_facts import CallRecordFacts
    from ivr.desk.config import FILE_NAME, load_desk_config
    from ivr.desk.levels_http import levels_extension_for
    from ivr.desk.reports_http import build_desk_reports_extension
    from ivr.desk.scripts_http import scripts_extension_for

    desk = (settings.citas_dir / "desk.yaml").exists()
    line_zone = ZoneInfo(load_line(settings.citas_dir / "line.yaml").timezone)
    pauses = load_desk_config(settings.citas_dir / FILE_NAME).pause_reasons if desk else {}
    levels = levels or levels_extension_for(settings, db)  # Niveles (docs/desk/levels.md)
    return [
        keywords or keyword_extension(KeywordStore(db)),  # Palabras clave (docs/cases/sentiment.md)
        incident_extension_for(db),  # Reportes de incidente (docs/cases/incidents.md)
        *([scripts_extension_for(db, settings.citas_dir, CallRecordFacts(CallRecordStore(db)))]
          if desk else []),  # Guiones and the agent's script (docs/desk/scripts.md)
        build_desk_reports_extension(db, line_zone, reason_labels=TRANSFER_REASONS,
                                     pause_labels=pauses),  # Reportes del escritorio (docs/desk/reports.md)
        *([levels] if levels is not None else []),
    ]


def desk_levels(settings: Settings, db: Database, ami: DeskAmi | None) -> ApiExtension | None:
    """Service levels over the desk's AMI connection (moves callers, hears outcomes:
    docs/desk/levels.md), or None without desk.yaml."""
    from ivr.desk.levels_http import levels_extension_for

    return levels_extension_for(settings, db, ami=ami, events=ami) if ami is not None else None


def sms_log_path(settings: Settings) -> Path:
    """Where the embedded file gateway writes the SMS it "sends"."""
    return settings.state_dir / settings.instance / "sms-sent.jsonl"


def sms_gateway(settings: Settings) -> SmsGateway:
    """The SMS provider when configured, else the embedded file gateway."""
    if settings.sms_url:
        return HttpSmsGateway(
            settings.sms_url, token=settings.sms_token or None, timeout=settings.request_timeout
        )
    return FileSmsGateway(sms_log_path(settings))


def slot_source(
    settings: Settings, db: Database, *, one_pending_per_service: bool = True,
    feed: ChangeFeed | None = None,
) -> SlotSource:
    """The insurer's scheduling service when configured, else our own database.

    ``one_pending_per_service`` is the line's rule (config/citas/line.yaml); an
    external service enforces its own. ``feed``: our database's free slots are
    kept in memory, invalidated through it (``ivr.booking.db``).
    """
    from ivr.booking.db import DbSlotSource
    from ivr.booking.http import HttpSlotSource

    if settings.booking_url:
        return HttpSlotSource(
            settings.booking_url,
            token=settings.booking_token or None,
            timeout=settings.request_timeout,
        )
    return DbSlotSource(
        db, timeout=settings.request_timeout, one_pending_per_service=one_pending_per_service,
        feed=feed,
    )


async def build_actions(
    settings: Settings,
    db: Database,
    slots: SlotSource,
    flags: FlagReader | None = None,
    reference: Reference | None = None,
) -> tuple[dict[str, Action], SmsOutbox]:
    from ivr.booking.db import DbSlotSource
    from ivr.booking.seed import demo_slots
    from ivr.cases.setup import case_store
    from ivr.citas.actions import CitasActions
    from ivr.citas.affiliates import YamlAffiliateDirectory
    from ivr.citas.reference import load_reference

    reference = reference or load_reference(settings.citas_dir)
    today = datetime.now(ZoneInfo(reference.line.timezone)).date()
    directory = YamlAffiliateDirectory.load(
        settings.citas_dir / "affiliates.yaml", today, sites=reference.sites
    )
    if settings.seed_demo and not settings.booking_url:
        await DbSlotSource(db, timeout=settings.request_timeout).seed_slots(
            demo_slots(today, reference.sites)
        )
    outbox = SmsOutbox(db, timeout=settings.request_timeout)
    actions = CitasActions(
        reference, directory, slots, outbox, flags=flags, cases=case_store(settings, db)
    )
    return actions.registry(), outbox


def reports_extension(settings: Settings, db: Database) -> ApiExtension:
    """The dashboard ("Tablero") on the ops API (``ivr serve``, ``ivr ops serve``): the
    cases' figures under cases.yaml and the citas line's migration funnel."""
    from ivr.cases.reports_http import build_reports_extension
    from ivr.cases.setup import cases_config
    from ivr.citas.funnel import CITAS_FUNNEL

    return build_reports_extension(db, cases_config(settings), CITAS_FUNNEL)


def desk_pop(
    settings: Settings, db: Database, *, flows: Mapping[str, Flow] | None = None,
    reference: Reference | None = None, slots: SlotSource | None = None,
) -> DeskPop | None:
    """The agents' screen pop over the citas line (docs/desk/pop.md), or None without
    desk.yaml: ``ivr serve`` listens to AMI with it, ``ivr ops serve`` only serves the page."""
    from ivr.citas.desk import citas_pop_source
    from ivr.desk.wiring import build_desk_pop

    if not (settings.citas_dir / "desk.yaml").exists():
        return None
    flows = flows if flows is not None else load_all_flows(settings)
    source = citas_pop_source(settings, db, flows=flows, reference=reference, slots=slots)
    return build_desk_pop(settings, db, source)


async def serve(settings: Settings, *, ready: asyncio.Event | None = None) -> None:
    """Run the controller (and its ops API) until SIGTERM/SIGINT."""
    from ivr.citas.actions import check_spoken_prompts
    from ivr.citas.line import CitasLine
    from ivr.citas.reference import load_reference
    from ivr.desk.queues import build_queues
    from ivr.desk.scripts_http import seed_default_scripts
    from ivr.multi.main import MainSlot

    reference = load_reference(settings.citas_dir)
    line = CitasLine(reference)
    registry = line.flag_registry()
    flows = load_all_flows(settings, registry, line)
    check_spoken_prompts(
        load_prompt_texts(settings.prompts_file).keys(), reference.sites, settings.prompts_file
    )
    db = Database(settings.database_url, timeout=settings.request_timeout)
    await db.migrate()
    await seed_default_scripts(db, settings.citas_dir)  # the desk's call scripts, version 1
    metrics = Metrics()
    ari_counters = AriCounters()  # /metrics; CITAS_ARI_COUNTS at shutdown (ivr bench)
    metrics.registry.register(AriCountersCollector(ari_counters))
    call_path = await CallPath.open(settings, db, reference, registry, metrics, ari_counters)
    ops, client, slots, outbox, engine, records = (
        call_path.ops, call_path.client, call_path.slots, call_path.outbox, call_path.engine,
        call_path.records,
    )  # fmt: skip
    reaction = call_path.reaction
    desk = desk_pop(settings, db, flows=flows, reference=reference, slots=slots)
    sla = build_sla_monitor(settings, db, client, line)
    monitor, calls = sla if sla is not None else (None, None)
    controller = Controller(
        settings, client, records, flows, engine, line, metrics, reaction, escalation=calls,
        controllers=settings.controllers,
    )  # fmt: skip
    start_heartbeat(ops, controller)  # the controller registry (docs/operations.md)
    # Several controllers (docs/perf/multi.md): slot 1 before our app connects.
    main_slot = await MainSlot.claim(settings)
    monitor_task = asyncio.create_task(monitor.run(), name="sla-monitor") if monitor else None
    gateway = sms_gateway(settings)
    sms_worker = SmsWorker(outbox, gateway, backoff_initial=settings.sms_retry_s)
    sms_task = asyncio.create_task(sms_worker.run(), name="sms-worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stream_task = asyncio.create_task(controller.stream.run(), name="ari-events")
    if main_slot is not None:
        main_slot.start(client, settings.app_name, controller.orphan_args)
    chat = build_chat(settings, db, engine, flows, reference) if settings.chat.enabled else None
    if chat is not None:
        metrics.watch_chat(lambda: chat.runner.counts, chat.counters.snapshot)
    backoffice = build_backoffice(settings, db, chat.runner.store if chat is not None else None)
    survey_worker = build_survey_worker(
        settings, db, outbox, reference, chat.runner.store if chat is not None else None
    )
    survey_task = asyncio.create_task(survey_worker.run(), name="survey-worker")
    texts = text_analysis(db, case_store(settings, db))  # sentiment, keywords (docs/cases)
    texts_task = asyncio.create_task(texts.worker.run(), name="text-analysis")
    desk_queues = build_queues(settings, db)  # agents in the queues, over AMI (docs/desk/queues.md)
    levels = desk_levels(settings, db, desk_queues.ami if desk_queues is not None else None)
    await ops.serve_http(
        lambda: {"database": ops.live.healthy, "ari": controller.stream.connected.is_set()},
        mount=chat.mount if chat is not None else None,
        chats=chat.runner.store if chat is not None else None,
        calls=records,
        extensions=[
            backoffice.extension,
            reports_extension(settings, db),
            *ops_extensions(settings, db, keywords=texts.extension, levels=levels),
            *([desk_queues.extension] if desk_queues is not None else []),
            *([desk.extension] if desk is not None else []),
        ],
    )
    if desk is not None and desk_queues is not None:
        desk.listen(desk_queues.ami)  # the screen pop on app_queue's events (docs/desk/pop.md)
    if desk_queues is not None:
        await desk_queues.start()
    if chat is not None:
        chat.start()
    backoffice.start()
    logger.info(
        "controller serving app %s on %s (flows: %s from %s; prompts from %s)",
        settings.app_name,
        settings.ari_url,
        ", ".join(flows),
        settings.config_dir,
        settings.prompts_dir,
    )
    try:
        if ready is not None:
            await controller.stream.connected.wait()
            ready.set()
        await stop.wait()
    finally:
        logger.info("shutting down: %d active call(s)", controller.router.active_calls)
        # The workers get SIGTERM now and their grace runs beside ours.
        workers_stopped = (
            asyncio.ensure_future(main_slot.stop(SHUTDOWN_GRACE_S)) if main_slot else None
        )
        survey_worker.stop()
        await survey_task
        if chat is not None:
            await chat.stop()
        if monitor is not None and monitor_task is not None:
            # Before the router: a call in progress records its end (failed) and hangs up.
            monitor.stop()
            await monitor_task
        await backoffice.stop()
        if desk is not None:
            await desk.close()
        if desk_queues is not None:
            await desk_queues.stop()
        await controller.router.shutdown(SHUTDOWN_GRACE_S)
        await controller.stream.stop()
        await stream_task
        if main_slot is not None and workers_stopped is not None:
            await workers_stopped
            main_slot.release()
        sms_worker.stop()
        await sms_task
        texts.worker.stop()
        await texts_task
        if isinstance(gateway, OwnedSession):
            await gateway.close()
        await call_path.close()
        ari_counters.write_if_asked()


def start_heartbeat(ops: OpsRuntime, controller: Controller) -> None:
    """This process in the controller registry (``ivr.ops.controllers``), with the
    calls it drives and its ARI connection (what ``/health/ready`` knows)."""
    ops.start_heartbeat(lambda: controller.router.active_calls, controller.stream.connected.is_set)


@dataclass
class CallPath:
    """What every controller process runs for its calls, ``serve`` and
    ``serve_voice_worker`` alike: the change feed (flags and slots another process
    changed), the flags with the booking breaker, the ARI client, the booking
    source, the flow engine with its actions and SMS outbox, the call records and
    the DTMF reaction timer. ``open`` starts them in that order, ``close`` ends
    them (the calls themselves have ended or gone to the agents before)."""

    db: Database
    reaction: ReactionTimer
    feed: ChangeFeed
    feed_task: asyncio.Task[None]
    ops: OpsRuntime
    client: AriClient
    booking: SlotSource
    slots: SlotSource  # ``booking`` behind the breaker (ops.guard): what the flow books through
    outbox: SmsOutbox
    engine: FlowEngine
    records: CallRecordStore
    records_task: asyncio.Task[None]

    @classmethod
    async def open(
        cls,
        settings: Settings,
        db: Database,
        reference: Reference,
        registry: FlagRegistry,
        metrics: Metrics,
        counters: AriCounters,
    ) -> CallPath:
        from ivr.ops.runtime import OpsRuntime

        # DTMF in → ARI out: on metrics, and to CITAS_REACTION_LOG when set (ivr bench).
        reaction = ReactionTimer.from_env(observer=metrics.reaction.observe)
        feed = ChangeFeed(db, poll_s=settings.changes_poll_s)  # what other processes changed
        feed_task = asyncio.create_task(feed.run(), name="change-feed")
        ops = OpsRuntime(settings, db, registry, metrics)
        ops.live.follow(feed)
        await ops.start()
        client = AriClient(
            settings.ari_url, settings.ari_user, settings.ari_password,
            timeout=settings.request_timeout, counters=counters,
        )  # fmt: skip
        booking = slot_source(
            settings, db, one_pending_per_service=reference.line.one_pending_per_service, feed=feed
        )
        slots = ops.guard(booking)
        actions, outbox = await build_actions(settings, db, slots, ops.live, reference)
        # The line's general agents (line.yaml agent_vdn.default): where a flow with
        # no VDN of its own goes, and a rescued caller whose flow had chosen none.
        engine = FlowEngine(
            actions,
            default_vdn=reference.line.vdn_default,
            flags=ops.live.value,
            texts=load_prompt_texts(settings.prompts_file),
        )
        records = CallRecordStore(db)
        records_task = asyncio.create_task(records.run(), name="call-records")
        return cls(db, reaction, feed, feed_task, ops, client, booking, slots, outbox, engine,
                   records, records_task)  # fmt: skip

    async def close(self) -> None:
        """In order: the records written (or logged as lost), flags, the change
        feed, the booking client, ARI, the reaction log, the database."""
        self.records.stop()
        await self.records_task
        if not await self.records.flush():
            logger.error("%d call record(s) not written at shutdown", self.records.buffered)
        await self.ops.stop()
        self.feed.stop()
        await self.feed_task
        if isinstance(self.booking, OwnedSession):
            await self.booking.close()
        await self.client.close()
        self.reaction.close()
        await self.db.close()


def cases_file(settings: Settings) -> Path:
    """The cases configuration; cases (and their SLA monitor) are on when it exists."""
    return settings.citas_dir / "cases.yaml"


def sla_clock(settings: Settings) -> Callable[[], datetime]:
    """The SLA monitor's now: the sandbox's movable test clock
    (``ivr.escalation.testclock``) when this instance is a sandbox (its
    ``sandbox.json`` exists: ``ivr sandbox up`` writes it, production has none),
    else the real time."""
    from ivr.escalation.testclock import CLOCK_FILE, TestClock, utcnow
    from ivr.sandbox.instance import InstancePaths

    paths = InstancePaths(settings)
    if not paths.state_file.is_file():
        return utcnow
    clock = TestClock(paths.dir / CLOCK_FILE)
    logger.warning(
        "cases: TEST CLOCK ON (sandbox instance %s): the SLA monitor's time is the real "
        "time plus the offset in %s (now %s); `ivr cases clock advance 2d` moves it",
        settings.instance, clock.path, clock.offset(),
    )  # fmt: skip
    return clock.now


def build_sla_monitor(
    settings: Settings, db: Database, client: AriClient, line: Line
) -> tuple[SlaMonitor, AriEscalationCalls] | None:
    """The SLA monitor and its ARI escalation calls, when ``cases.yaml`` exists
    (``ConfigError`` when it is invalid); None otherwise."""
    from ivr.cases.setup import case_store
    from ivr.escalation.call import AriEscalationCalls
    from ivr.escalation.monitor import SlaMonitor
    from ivr.escalation.summary import PROMPT_IDS
    from ivr.yamlsrc import ConfigError

    path = cases_file(settings)
    if not path.is_file():
        logger.info("cases: no %s; no SLA monitor", path)
        return None
    store = case_store(settings, db)
    prompts = frozenset(load_prompt_texts(settings.prompts_file))
    missing = sorted(PROMPT_IDS - prompts)
    if missing:
        raise ConfigError(
            str(settings.prompts_file), None, f"prompts.{missing[0]}",
            "no text, and the escalation call says it (ivr/escalation/summary.py)",
        )  # fmt: skip
    clock = sla_clock(settings)
    calls = AriEscalationCalls(client, settings.app_name, line.voice, prompts, clock=clock)
    return SlaMonitor(store, calls, clock=clock), calls


def build_backoffice(settings: Settings, db: Database, chats: ConversationStore | None) -> Backoffice:
    """The cases' back office (``ivr.cases.backoffice``): the console's case routes,
    the answers by e-mail (``settings.mail``) and by WhatsApp (``chats``; None:
    e-mail only), on the cases config of ``settings.citas_dir``."""
    from ivr.cases.backoffice import Backoffice
    from ivr.cases.setup import cases_config

    return Backoffice.build(settings, db, cases_config(settings), chats)


# The citas line on WhatsApp: a chat opened from the call's SMS (its reference)
# starts at the slot search, the call having decided service and eligibility.
CHAT_RESUME_NODE = "find_slot"
CHAT_FLOW = "citas"


def build_chat(
    settings: Settings,
    db: Database,
    engine: FlowEngine,
    flows: Mapping[str, Flow],
    reference: Reference,
) -> ChatService:
    """The assistant on the line's flow, sharing the voice line's engine (its
    actions, flags and booking rules): ``ivr.chat.runner`` over ``db``."""
    from datetime import timedelta

    from ivr.chat.callref import resolve_reference
    from ivr.chat.runner import ChatLine, ChatRunner, missing_prompts
    from ivr.chat.service import ChatService, endpoint, whatsapp_client
    from ivr.chat.store import ConversationStore
    from ivr.yamlsrc import ConfigError

    prompts = load_prompt_texts(settings.prompts_file)
    texts = {pid: getattr(p, "chat", None) or p.text for pid, p in prompts.items()}
    missing = missing_prompts(texts)
    if missing:
        raise ConfigError(
            str(settings.prompts_file), None, f"prompts.{missing[0]}",
            "no text, and the WhatsApp assistant sends it (ivr/chat)",
        )  # fmt: skip
    line = ChatLine(
        flow=flows[CHAT_FLOW], texts=texts, resume_node=CHAT_RESUME_NODE,
        template=settings.chat.template, template_language=settings.chat.template_language,
        idle=timedelta(minutes=settings.chat.idle_minutes),
    )  # fmt: skip
    point = endpoint(settings)
    client = whatsapp_client(point, settings.request_timeout)

    async def references(code: str, sender: str) -> CallReference | None:
        return await resolve_reference(db, code, sender=sender)

    store = ConversationStore(db, flow=CHAT_FLOW)
    # A survey's reply never starts the flow: the survey sees each message first.
    surveys = SurveyReplies(SurveyStore(db), texts, case_history(settings, db))
    runner = ChatRunner(store, engine, line, client, references=references, takers=[surveys])
    return ChatService(runner, point)


def chat_texts(settings: Settings, needed: Collection[str], who: str) -> dict[str, str]:
    """Prompt id -> what a chat or SMS reads; raises ``ConfigError`` naming the first of
    ``needed`` with no text (``who`` sends it)."""
    from ivr.yamlsrc import ConfigError

    prompts = load_prompt_texts(settings.prompts_file)
    texts = {pid: getattr(p, "chat", None) or p.text for pid, p in prompts.items()}
    for missing in (pid for pid in needed if pid not in texts):
        raise ConfigError(
            str(settings.prompts_file), None, f"prompts.{missing}", f"no text, and {who} sends it"
        )
    return texts


def build_survey_worker(
    settings: Settings,
    db: Database,
    outbox: SmsOutbox,
    reference: Reference,
    chats: ConversationStore | None,
) -> SurveyWorker:
    """The case surveys (``ivr.surveys.worker``): on the assistant's WhatsApp when
    its conversation window is open, else by SMS with a link to the assistant."""
    from ivr.surveys import chat as survey_chat
    from ivr.surveys import worker

    needed = (*worker.PROMPTS, *survey_chat.PROMPTS)
    texts = chat_texts(settings, needed, "the survey (ivr/surveys)")
    return worker.SurveyWorker(
        SurveyStore(db), outbox, texts, chats=chats,
        whatsapp_number=reference.line.whatsapp_number or None,
        case_events=case_history(settings, db),
    )  # fmt: skip


def case_history(settings: Settings, db: Database) -> CaseEvents:
    """Survey steps written to the case's history (``case_events``, actor ``sistema``)."""
    from ivr.cases.model import SYSTEM
    from ivr.cases.setup import case_store

    cases = case_store(settings, db)

    async def add(number: str, action: str, detail: str) -> None:
        await cases.add_event(number, action, actor=SYSTEM, detail=detail)

    return add


# --- several controllers (docs/perf/multi.md) ---------------------------------------
# `ivr serve --voice-worker`: one more controller process for the same Asterisk. It
# drives the calls of one slot's Stasis application (ivr.multi.slots) with what a
# call needs: the ARI controller, the call records, the flags (read from the
# database like the main process's), the booking, the SMS outbox (SMS queued here,
# sent by the main process's sender). What there is one of per deployment stays
# in the main process (docs/perf/multi.md has the table): the ops HTTP API and
# /metrics, the SMS sender, the surveys, the SLA monitor and its escalation calls,
# the desk's AMI, the WhatsApp chat, the text analysis, the back office. The main
# process migrates the database before it starts the workers.
PARENT_POLL_S = 0.5  # how often a worker checks that its parent `ivr serve` lives


async def serve_voice_worker(settings: Settings) -> None:
    """Claim a free slot 2..N (waiting as a standby while none is), drive its
    application until SIGTERM/SIGINT or the parent's death, then give running
    calls the grace and hand the rest to the agents, as ``serve`` does."""
    from ivr.citas.line import CitasLine
    from ivr.citas.reference import load_reference
    from ivr.multi.adopter import OrphanAdopter
    from ivr.multi.slots import Slots, slot_app

    parent = os.getppid()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    slots = Slots.of(settings)
    claim = asyncio.ensure_future(slots.wait_claim(range(2, slots.count + 1)))
    watch = asyncio.ensure_future(_until_orphaned(parent, stop))
    stopped = asyncio.ensure_future(stop.wait())  # SIGTERM, or the parent's death
    await asyncio.wait({claim, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if not claim.done():
        claim.cancel()
        watch.cancel()
        logger.info("voice worker: stopped while a standby (no free slot)")
        return
    stopped.cancel()
    own = claim.result()
    base_app = settings.app_name
    app = slot_app(base_app, own.slot)
    _tag_logs(own.slot)
    settings = replace(settings, app_name=app, seed_demo=False)
    reference = load_reference(settings.citas_dir)
    line = CitasLine(reference)
    registry = line.flag_registry()
    flows = load_all_flows(settings, registry, line)
    db = Database(settings.database_url, timeout=settings.request_timeout)
    metrics = Metrics()  # not exported: /metrics is the main process's (docs/perf/multi.md)
    ari_counters = AriCounters()  # CITAS_ARI_COUNTS at shutdown: one file per process
    calls = await CallPath.open(settings, db, reference, registry, metrics, ari_counters)
    controller = Controller(
        settings, calls.client, calls.records, flows, calls.engine, line, metrics,
        calls.reaction, controllers=slots.count,
    )  # fmt: skip
    start_heartbeat(calls.ops, controller)  # a worker is in the registry too
    adopter = OrphanAdopter(slots, own, calls.client, base_app, controller.orphan_args)
    stream_task = asyncio.create_task(controller.stream.run(), name="ari-events")
    adopter_task = asyncio.create_task(adopter.run(), name="orphan-adopter")
    logger.info("voice worker pid %d serving slot %d (app %s)", os.getpid(), own.slot, app)
    try:
        await stop.wait()  # SIGTERM/SIGINT, or the parent's death (_until_orphaned)
    finally:
        watch.cancel()
        logger.info("voice worker slot %d shutting down: %d active call(s)",
                    own.slot, controller.router.active_calls)  # fmt: skip
        adopter_task.cancel()
        await asyncio.gather(adopter_task, return_exceptions=True)
        await controller.router.shutdown(SHUTDOWN_GRACE_S)
        await controller.stream.stop()
        await stream_task
        await calls.close()
        ari_counters.write_if_asked(tag=f"slot{own.slot}")  # no {pid}: <name>.slot<N>.json
        own.release()


async def _until_orphaned(parent: int, stop: asyncio.Event) -> None:
    """Set ``stop`` when the parent ``ivr serve`` is gone (we are re-parented)."""
    while True:  # polling: re-parenting sends no signal
        if os.getppid() != parent:
            break
        await asyncio.sleep(PARENT_POLL_S)
    logger.error("voice worker: parent %d is gone; stopping", parent)
    stop.set()


def _tag_logs(slot: int) -> None:
    """Worker log lines say their slot (they share the main process's output)."""
    fmt = logging.Formatter(f"%(asctime)s %(levelname)s [slot {slot}] %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setFormatter(fmt)
