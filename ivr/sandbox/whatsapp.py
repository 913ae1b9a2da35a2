"""The WhatsApp Cloud API simulator of a sandbox (issue 10 §8).

``ivr sandbox up`` starts it beside Asterisk (``start_simulator``), as its own
process, so it outlives restarts of ``ivr serve`` (the restart tests and a
demo keep their chat); ``ivr sandbox down`` stops it (by its pid, checked
against its command line). It posts signed webhooks to the sandbox's
``ivr serve`` (``webhook_url``) and records what the product sends.

With no WhatsApp number configured, ``ivr serve`` talks to it with the
sandbox's credentials (``ivr.chat.service.endpoint``).
"""

from __future__ import annotations

import sys
import urllib.request

from ivr.chat.service import (
    SANDBOX_APP_SECRET,
    SANDBOX_PHONE_NUMBER_ID,
    SANDBOX_TOKEN,
    simulator_url,
    webhook_url,
)
from ivr.sandbox.peers import Peer
from ivr.settings import Settings

SIMULATOR_MODULE = "ivr.whatsapp.simulator"
SIMULATOR = Peer("the WhatsApp simulator", SIMULATOR_MODULE, "whatsapp-simulator")


def _answers(settings: Settings) -> bool:
    url = f"{simulator_url(settings)}/_simulator/messages?to=-&since=0"
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_simulator(settings: Settings) -> int:
    """Start the sandbox's simulator unless it runs; returns its pid.

    Raises ``RuntimeError`` when it does not answer within ``peers.START_TIMEOUT_S``."""
    command = [
        sys.executable, "-m", SIMULATOR_MODULE, "--host", settings.host,
        "--port", str(settings.ports.whatsapp_sim), "--webhook", webhook_url(settings),
        "--app-secret", SANDBOX_APP_SECRET, "--phone-number-id", SANDBOX_PHONE_NUMBER_ID,
        "--token", SANDBOX_TOKEN,
    ]  # fmt: skip
    return SIMULATOR.start(settings, command, lambda: _answers(settings))


def stop_simulator(settings: Settings) -> None:
    """Stop the sandbox's simulator (ours: its pid and command line), if it runs."""
    SIMULATOR.stop(settings)


def simulator_running(settings: Settings) -> bool:
    return SIMULATOR.running_pid(settings) is not None
