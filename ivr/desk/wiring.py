"""The desk's screen pop, wired: what the composition root calls (``ivr serve``, ``ivr ops serve``).

:func:`build_desk_pop` gives None when the deployment has no ``desk.yaml`` (the
desk is off), else a :class:`DeskPop`: the store, the push hub, the
:class:`ivr.desk.screen.ScreenPop` over the line's :class:`ivr.desk.pop.PopSource`,
and the ops-API extension (the desktop page and its stream). ``listen(ami)``
subscribes the pop to a connection's queue events (``ivr.desk.ami.DeskAmi``, or
an ``AmiConnection``); ``ivr ops serve`` never listens (it has no AMI), so there a
desktop sees chat hand-offs it takes and ``/api/desk/current``, not calls: the
desktop of calls is the one ``ivr serve`` serves.

Every controller of a deployment listens to its Asterisk's AMI: each sees every
``AgentConnect``, opens the same contact (``DeskStore.open_contact`` is
idempotent on the agent leg's Uniqueid) and pushes to the desktops connected to
it, so an agent may use any controller's console.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.desk.config import DeskConfig, load_desk_for_line
from ivr.desk.events import EventSource, listen
from ivr.desk.pop import PopSource, VariablesSource
from ivr.desk.pop_http import desk_pop_extension
from ivr.desk.push import PushHub
from ivr.desk.screen import ScreenPop
from ivr.desk.store import DeskStore
from ivr.ops.api import ApiExtension
from ivr.settings import Settings
from ivr.store.db import Database


@dataclass
class DeskPop:
    config: DeskConfig
    store: DeskStore
    hub: PushHub
    screen: ScreenPop
    extension: ApiExtension

    def listen(self, source: EventSource) -> None:
        """Pop on ``source``'s queue events (register before it connects, or after:
        handlers survive reconnects)."""
        listen(source, self.screen.on_event)

    async def close(self) -> None:
        await self.screen.close()


def build_desk_pop(
    settings: Settings, db: Database, source: PopSource | None = None
) -> DeskPop | None:
    """The screen pop for ``settings``' line, or None without ``<citas_dir>/desk.yaml``.
    ``source``: the line's pop source (``ivr.citas.desk.citas_pop_source``); None:
    the channel variables only. Raises ``ConfigError`` for a bad desk.yaml."""
    if not (settings.citas_dir / "desk.yaml").exists():
        return None
    config = load_desk_for_line(settings.citas_dir)
    store = DeskStore(db)
    hub = PushHub()
    screen = ScreenPop(store, config, source or VariablesSource(), hub)
    return DeskPop(config, store, hub, screen, desk_pop_extension(screen, config))
