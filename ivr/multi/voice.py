"""``ivr serve --voice-worker``: one more controller process for the same Asterisk.

It drives the calls of one slot's Stasis application (``ivr.multi.slots``)
with everything a call needs: the ARI controller, the call records, the
flags (read from the database like the main process's), the booking, the SMS
outbox (the SMS are queued here and sent by the main process's sender). What
there is one of per deployment stays in the main process (docs/perf/multi.md
has the table): the ops HTTP API and /metrics, the SMS sender, the surveys,
the SLA monitor and its escalation calls, the desk's AMI, the WhatsApp chat,
the text analysis, the back office. The database is migrated by the main
process before it starts the workers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import replace

from ivr.settings import Settings

logger = logging.getLogger(__name__)

PARENT_POLL_S = 0.5  # how often a worker checks that its parent `ivr serve` lives


async def serve_voice_worker(settings: Settings) -> None:
    """Claim a free slot 2..N (waiting as a standby while none is), drive its
    application until SIGTERM/SIGINT or the parent's death, then give running
    calls the grace and hand the rest to the agents, as ``serve`` does."""
    from ivr.ari import AriClient
    from ivr.citas.line import CitasLine
    from ivr.citas.reference import load_reference
    from ivr.controller import (
        SHUTDOWN_GRACE_S,
        Controller,
        build_actions,
        load_all_flows,
        slot_source,
    )
    from ivr.flow.engine import FlowEngine
    from ivr.httpsession import OwnedSession
    from ivr.multi.adopter import OrphanAdopter
    from ivr.multi.slots import Slots, slot_app
    from ivr.ops.metrics import Metrics
    from ivr.ops.runtime import OpsRuntime
    from ivr.prompts import load_prompt_texts
    from ivr.reaction import ReactionTimer
    from ivr.store import CallRecordStore, Database

    parent = os.getppid()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    slots = Slots.of(settings)
    claim = asyncio.ensure_future(slots.wait_claim(range(2, slots.count + 1)))
    watch = asyncio.ensure_future(_until_orphaned(parent, stop))
    await asyncio.wait({claim, watch}, return_when=asyncio.FIRST_COMPLETED)
    if not claim.done():
        claim.cancel()
        watch.cancel()
        logger.info("voice worker: stopped while a standby (no free slot)")
        return
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
    reaction = ReactionTimer.from_env(observer=metrics.reaction.observe)
    ops = OpsRuntime(settings, db, registry, metrics)
    await ops.start()
    client = AriClient(
        settings.ari_url, settings.ari_user, settings.ari_password, timeout=settings.request_timeout
    )
    booking = slot_source(
        settings, db, one_pending_per_service=reference.line.one_pending_per_service
    )
    actions, _outbox = await build_actions(settings, db, ops.guard(booking), ops.live, reference)
    engine = FlowEngine(
        actions,
        default_vdn=reference.line.vdn_default,
        flags=ops.live.value,
        texts=load_prompt_texts(settings.prompts_file),
    )
    records = CallRecordStore(db)
    records_task = asyncio.create_task(records.run(), name="call-records")
    controller = Controller(
        settings, client, records, flows, engine, line, metrics, reaction,
        controllers=slots.count,
    )  # fmt: skip
    adopter = OrphanAdopter(slots, own, client, base_app, controller.orphan_args)
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
        records.stop()
        await records_task
        if not await records.flush():
            logger.error("%d call record(s) not written at shutdown", records.buffered)
        await ops.stop()
        if isinstance(booking, OwnedSession):
            await booking.close()
        await client.close()
        client.counters.write_if_asked(tag=f"slot{own.slot}")  # CITAS_ARI_COUNTS (ivr bench)
        reaction.close()
        await db.close()
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
