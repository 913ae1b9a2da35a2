"""End-to-end fixtures: a real Asterisk 22 sandbox and the real controller.

The sandbox is built (once, cached) and started for the session with its own
instance name and ports, so it can run beside a developer's demo sandbox. If
it cannot be built or started, every end-to-end test errors: the suite is
never skipped.

Under pytest-xdist (``-n 2 --dist loadfile``: ``scripts/setup.sh test``,
docs/testing.md) each worker is a session of its own: its own sandbox instance
and ports (``e2e_env``), state directory (the worker's own ``tmp_path_factory``),
database, WhatsApp simulator and controller. They share only the read-only
cached root and the prompt build directory, whose builders take turns
(``ivr.prompts.build_prompts``). A failing test's report names the sandbox it
used (section "e2e sandbox").
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ivr.sandbox import manager
from ivr.sandbox.errors import SandboxError
from ivr.settings import REPO_ROOT, Settings

# Its own instance and ports, so it can run beside a demo sandbox (offset 0);
# CITAS_E2E_PORT_OFFSET moves it when two test sessions share a machine.
DEFAULT_INSTANCE = "e2e"
DEFAULT_PORT_OFFSET = 2000
# xdist worker gwN runs at the base offset + N * 500: every port moves by 500 and
# the RTP range (1000 ports, moved by twice the offset) by 1000, so the workers'
# blocks never overlap (tests/unit/test_e2e_workers.py checks it).
WORKER_PORT_STEP = 500


def e2e_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``CITAS_INSTANCE`` and ``CITAS_PORT_OFFSET`` of this test process's sandbox.

    Alone (no xdist): ``CITAS_E2E_INSTANCE`` (default ``e2e``) at
    ``CITAS_E2E_PORT_OFFSET`` (default 2000), as always. As pytest-xdist worker
    ``gwN`` (``PYTEST_XDIST_WORKER``): instance ``<instance>-gwN`` at
    ``offset + N * WORKER_PORT_STEP``. Raises ``ValueError`` on an offset that is
    not a number or a worker id that is not ``gw<N>``; ports out of range are
    ``Settings.from_env``'s ``SettingsError``.
    """
    instance = environ.get("CITAS_E2E_INSTANCE") or DEFAULT_INSTANCE
    raw = environ.get("CITAS_E2E_PORT_OFFSET") or str(DEFAULT_PORT_OFFSET)
    try:
        offset = int(raw)
    except ValueError:
        raise ValueError(f"CITAS_E2E_PORT_OFFSET={raw!r} is not an integer") from None
    worker = environ.get("PYTEST_XDIST_WORKER")
    if worker:
        number = worker.removeprefix("gw")
        if not number.isdigit():
            raise ValueError(f"PYTEST_XDIST_WORKER={worker!r} is not gw<N>")
        instance, offset = f"{instance}-{worker}", offset + int(number) * WORKER_PORT_STEP
    return {"CITAS_INSTANCE": instance, "CITAS_PORT_OFFSET": str(offset)}


def describe(env: Mapping[str, str]) -> str:
    """One line naming a sandbox: instance, offset, its main ports, state dir, worker."""
    where = f"sandbox {env['CITAS_INSTANCE']!r} at port offset {env['CITAS_PORT_OFFSET']}"
    try:
        p = Settings.from_env(env).ports
        where += f" (SIP {p.sip}, ARI {p.http}, ops {p.ops_http}, agent {p.agent_sip})"
    except ValueError as exc:  # SettingsError: say it rather than hide the identity
        where += f" ({exc})"
    worker = env.get("PYTEST_XDIST_WORKER")
    return (
        where
        + f", state dir {env.get('CITAS_STATE_DIR', '?')}"
        + (f", xdist worker {worker}" if worker else "")
    )


E2E_ENV = e2e_env(os.environ)
SANDBOX_KEY = pytest.StashKey[str]()


@dataclass
class Sandbox:
    settings: Settings
    env: dict[str, str]

    def ari_get(self, path: str) -> Any:
        s = self.settings
        token = base64.b64encode(f"{s.ari_user}:{s.ari_password}".encode()).decode()
        req = urllib.request.Request(
            f"{s.ari_url}{path}", headers={"Authorization": f"Basic {token}"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def app_registered(self) -> bool:
        apps = self.ari_get("/applications")
        return any(a["name"] == self.settings.app_name for a in apps)

    def call(self, scenario: str) -> dict[str, Any]:
        """Place a scenario with the real CLI; returns its JSON report."""
        return self.scenario("call", scenario, timeout=240)

    def scenario(self, command: str, scenario: str, *, timeout: float) -> dict[str, Any]:
        """Run ``ivr COMMAND SCENARIO --json`` (``call`` or ``chat``) with the real CLI;
        its JSON report, with the process's ``exit_code``."""
        proc = subprocess.run(
            [sys.executable, "-m", "ivr.cli", command, scenario, "--json"],
            capture_output=True, text=True, errors="replace", timeout=timeout, env=self.env, cwd=REPO_ROOT,
            check=False,
        )  # fmt: skip
        try:
            report: dict[str, Any] = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(
                f"ivr {command} {scenario} printed no report:\n{proc.stdout}\n{proc.stderr}"
            ) from None
        report["exit_code"] = proc.returncode
        return report


def ok(report: dict[str, Any]) -> dict[str, Any]:
    """A scenario report that passed: no failure and exit code 0."""
    assert report["failures"] == [] and report["exit_code"] == 0, report
    return report


def call_past_eligibility(sandbox: Sandbox) -> bool:
    """A channel in the app whose flow has annotated its context (citas: eligibility
    done): ``CITAS_CONTEXT`` holds a segment (an unset variable is a 404)."""
    for channel in sandbox.ari_get("/channels"):
        try:
            found = sandbox.ari_get(f"/channels/{channel['id']}/variable?variable=CITAS_CONTEXT")
        except urllib.error.HTTPError:
            continue
        if "segment=" in found.get("value", ""):
            return True
    return False


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def sandbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    state_dir = tmp_path_factory.mktemp("state")  # per xdist worker: its own basetemp
    # One controller process per `ivr serve` (CITAS_CONTROLLERS=1): the session's
    # controller and every test's own; tests/e2e/test_controllers.py sets 2.
    env = {**os.environ, **E2E_ENV, "CITAS_STATE_DIR": str(state_dir), "CITAS_CONTROLLERS": "1"}
    request.config.stash[SANDBOX_KEY] = describe(env)
    try:
        settings = Settings.from_env(env)
        manager.up(settings)  # raises SandboxError (test error, not skip) when it cannot run
    except Exception as exc:
        # The short summary (-ra) shows this line: say which sandbox could not start.
        raise SandboxError(f"{describe(env)}: {type(exc).__name__}: {exc}") from exc
    try:
        yield Sandbox(settings, env)
    finally:
        manager.down(settings)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed or erroring end-to-end test's report names the sandbox it used
    (with two workers, which of the two; their logs are under its state dir)."""
    del call
    report: pytest.TestReport = yield
    used = item.config.stash.get(SANDBOX_KEY, None)
    if report.failed and used is not None:
        report.sections.append(("e2e sandbox", used))
    return report


class ControllerProcess:
    """``ivr serve`` as a child process of the test session (ended by its pid)."""

    def __init__(
        self, sandbox: Sandbox, log: Path, command: list[str] | None = None, cwd: Path = REPO_ROOT
    ) -> None:
        self.sandbox, self.log = sandbox, log
        # Another installation's `ivr serve` (tests/e2e/test_config_dir.py) when given.
        self.command = command or [sys.executable, "-m", "ivr.cli", "serve"]
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command, env=self.sandbox.env, cwd=self.cwd,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_until(self._ready, 30, "the controller to register its ARI app")
        except BaseException:
            self.proc.kill()  # ours, by its pid: never leave a stray controller behind
            self.proc.wait(timeout=10)
            raise

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"controller exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
            )
        # Registered is not enough after a restart (Asterisk lists an app while its
        # channels remain): ready means the controller's own ARI and database checks pass.
        return self.sandbox.app_registered() and self._health_ready()

    def _health_ready(self) -> bool:
        port = Settings.from_env(self.sandbox.env).ports.ops_http
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:  # not listening yet, or 503 (HTTPError is an OSError)
            return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        wait_until(lambda: not self.sandbox.app_registered(), 10, "the ARI app to unregister")


@pytest.fixture(scope="session")
def controller(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    proc = ControllerProcess(sandbox, tmp_path_factory.mktemp("controller") / "serve.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def no_session_controller(controller: ControllerProcess) -> Iterator[None]:
    """One Stasis app, one ops port: the session's controller steps aside for a test's own."""
    controller.stop()
    try:
        yield
    finally:
        controller.start()


def edit_once(path: Path, old: str, new: str) -> None:
    """Replace ``old``, which must stand exactly once in ``path``, by ``new``."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")
