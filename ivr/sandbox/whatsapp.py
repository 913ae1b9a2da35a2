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

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from ivr.chat.service import (
    SANDBOX_APP_SECRET,
    SANDBOX_PHONE_NUMBER_ID,
    SANDBOX_TOKEN,
    simulator_url,
    webhook_url,
)
from ivr.sandbox.instance import pid_alive
from ivr.settings import Settings

SIMULATOR_MODULE = "ivr.whatsapp.simulator"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


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
    # It outlives this command; a daemon thread reaps it if it ends while we still
    # run (a test session), so it never lingers as a zombie (as the supervisor).
    threading.Thread(target=proc.wait, name="reap-whatsapp-simulator", daemon=True).start()
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
