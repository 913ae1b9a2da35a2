"""The desk's queues part as the composition root wires it (``ivr serve``, docs/desk/queues.md).

``build_queues(settings, db)`` returns ``None`` when the deployment has no
``desk.yaml`` (no desk: nothing runs, no routes), else a ``DeskQueues``: the
desk's one AMI session (``DeskAmi``: the pop part registers its queue-event
handlers on ``DeskQueues.ami``), ``QueueControl`` over it, and the ops-API
extension of the agents' presence. ``start()`` launches the AMI supervisor (it
never blocks: Asterisk may come later), ``stop()`` closes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ivr.desk.agents_http import agents_extension
from ivr.desk.ami import DeskAmi, QueueControl
from ivr.desk.config import FILE_NAME, load_desk_config
from ivr.desk.store import DeskStore
from ivr.ops.api import ApiExtension
from ivr.settings import Settings
from ivr.store.db import Database

logger = logging.getLogger(__name__)


@dataclass
class DeskQueues:
    ami: DeskAmi
    control: QueueControl
    extension: ApiExtension

    async def start(self) -> None:
        await self.ami.start()

    async def stop(self) -> None:
        await self.ami.stop()


def build_queues(settings: Settings, db: Database) -> DeskQueues | None:
    """The queues part for ``settings`` (``ConfigError`` for a bad desk.yaml); None
    without desk.yaml."""
    path = settings.citas_dir / FILE_NAME
    if not path.is_file():
        logger.info("desk: no %s; no agents' queues", path)
        return None
    config = load_desk_config(path)
    ami = DeskAmi(settings.host, settings.ports.ami, settings.ami_user, settings.ami_password,
                  timeout=settings.request_timeout)  # fmt: skip
    control = QueueControl(ami, config, DeskStore(db), config.pause_reasons)
    return DeskQueues(ami, control, agents_extension(control, ami.health))
