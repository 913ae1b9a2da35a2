"""The WhatsApp Cloud API simulator of a sandbox (issue 10 §8).

``ivr sandbox up`` starts it beside Asterisk (``start_simulator``), as its own
process, so it outlives restarts of ``ivr serve`` (the restart tests and a
demo keep their chat); ``ivr sandbox down`` stops it (by its pid, checked
against its command line). It posts signed webhooks to the sandbox's
``ivr serve`` (``webhook_url``) and records what the product sends.

``endpoint(settings)``: where ``ivr serve`` sends and what it checks. With no
WhatsApp number configured (``CITAS_WHATSAPP_PHONE_NUMBER_ID`` empty) that is
the sandbox's simulator with the sandbox's own credentials (``SANDBOX``);
with one, the configured Cloud API (README "Connecting a real WhatsApp
Business number").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ivr.sandbox.instance import pid_alive
from ivr.settings import Settings

SIMULATOR_MODULE = "ivr.whatsapp.simulator"
WEBHOOK_PATH = "/whatsapp/webhook"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class WhatsAppEndpoint:
    """The Cloud API the assistant uses: ``api_base`` (Graph API or the simulator),
    ``api_version``, ``phone_number_id``, ``token``, ``app_secret`` (webhook
    signatures), ``verify_token`` (webhook subscription); ``simulated``: the
    sandbox's simulator."""

    api_base: str
    api_version: str
    phone_number_id: str
    token: str
    app_secret: str
    verify_token: str
    simulated: bool


SANDBOX_PHONE_NUMBER_ID = "100000000000001"
SANDBOX_TOKEN = "sandbox-token"
SANDBOX_APP_SECRET = "sandbox-app-secret"
SANDBOX_VERIFY_TOKEN = "sandbox-verify-token"


def simulator_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.ports.whatsapp_sim}"


def webhook_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.ports.ops_http}{WEBHOOK_PATH}"


def endpoint(settings: Settings) -> WhatsAppEndpoint:
    if settings.whatsapp_phone_number_id:
        return WhatsAppEndpoint(
            settings.whatsapp_api_base, settings.whatsapp_api_version,
            settings.whatsapp_phone_number_id, settings.whatsapp_token,
            settings.whatsapp_app_secret, settings.whatsapp_verify_token, simulated=False,
        )  # fmt: skip
    return WhatsAppEndpoint(
        simulator_url(settings), settings.whatsapp_api_version, SANDBOX_PHONE_NUMBER_ID,
        SANDBOX_TOKEN, SANDBOX_APP_SECRET, SANDBOX_VERIFY_TOKEN, simulated=True,
    )  # fmt: skip


def _pid_file(settings: Settings) -> Path:
    return settings.state_dir / settings.instance / "whatsapp-simulator.pid"


def _log_file(settings: Settings) -> Path:
    return settings.state_dir / settings.instance / "whatsapp-simulator.log"


def _running_pid(settings: Settings) -> int | None:
    try:
        pid = int(_pid_file(settings).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid, SIMULATOR_MODULE) else None


def _answers(settings: Settings) -> bool:
    url = f"{simulator_url(settings)}/_simulator/messages?to=-&since=0"
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_simulator(settings: Settings) -> int:
    """Start the sandbox's simulator unless it runs; returns its pid.

    Raises ``RuntimeError`` when it does not answer within ``START_TIMEOUT_S``."""
    pid = _running_pid(settings)
    if pid is not None:
        return pid
    _pid_file(settings).parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", SIMULATOR_MODULE, "--host", settings.host,
        "--port", str(settings.ports.whatsapp_sim), "--webhook", webhook_url(settings),
        "--app-secret", SANDBOX_APP_SECRET, "--phone-number-id", SANDBOX_PHONE_NUMBER_ID,
        "--token", SANDBOX_TOKEN,
    ]  # fmt: skip
    with _log_file(settings).open("ab") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    _pid_file(settings).write_text(str(proc.pid))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the WhatsApp simulator exited with {proc.returncode}")
        if _answers(settings):
            return proc.pid
        time.sleep(0.1)
    stop_simulator(settings)
    raise RuntimeError(f"the WhatsApp simulator did not answer within {START_TIMEOUT_S:g} s")


def stop_simulator(settings: Settings) -> None:
    """Stop the sandbox's simulator (ours: its pid and command line), if it runs."""
    pid = _running_pid(settings)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while pid_alive(pid, SIMULATOR_MODULE) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid, SIMULATOR_MODULE):
            os.kill(pid, signal.SIGKILL)
    _pid_file(settings).unlink(missing_ok=True)


def simulator_running(settings: Settings) -> bool:
    return _running_pid(settings) is not None
