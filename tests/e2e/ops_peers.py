"""What the operations end-to-end tests talk to: the ops API (as a client) and a
booking service (the reference implementation on a real port, with a fault switch)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.booking.db import DbSlotSource
from ivr.booking.seed import demo_slots
from ivr.booking.service import booking_service_app
from ivr.citas.reference import CITAS_DIR, load_sites
from ivr.settings import REPO_ROOT
from ivr.store import Database


class OpsApi:
    """The controller's ops API over real HTTP."""

    def __init__(self, port: int, token: str = "") -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"}
        token = self.token if token is None else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.request(method, path, body)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer

    def metric(self, name: str, default: float | None = None) -> float:
        """A sample from /metrics (``name`` with its labels, as Prometheus prints it)."""
        status, text = self.request("GET", "/metrics", token="")
        assert status == 200, text
        found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", str(text), re.MULTILINE)
        if found is None:
            assert default is not None, f"{name} not in /metrics"
            return default
        return float(found.group(1))


def create_token(env: dict[str, str], name: str, role: str) -> str:
    """With the real CLI, as an operator would."""
    proc = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "ops", "token", "create", name, "--role", role,
         "--reason", "e2e tests"],
        capture_output=True, text=True, errors="replace", env=env, cwd=REPO_ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


_AGENT_TOKENS: dict[tuple[str, str], str] = {}


def agent_token(env: dict[str, str], user: str) -> str:
    """The ops-API token of the desk agent whose desk.yaml ``user`` is ``user`` (ana,
    bruno, carla...) on this sandbox's database, created once per test process.

    A token's name is unique in a database and names the agent it acts as, so every
    desk test file on one sandbox must share the agent's one token: two files creating
    "ana" in one run failed with "a token named 'ana' exists". Role operator: an agent
    follows scripts and escalates (a viewer may only log itself in and out)."""
    key = (env["CITAS_STATE_DIR"], user)
    if key not in _AGENT_TOKENS:
        _AGENT_TOKENS[key] = create_token(env, user, "operator")
    return _AGENT_TOKENS[key]


class LoopThread:
    """An asyncio loop in a daemon thread; the peers below run their servers on it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class BookingPeer(LoopThread):
    """The reference booking service in a thread; ``mode`` injects faults: ok, fail, slow."""

    def __init__(self, db_path: Path, port: int) -> None:
        self.db_url = f"sqlite+aiosqlite:///{db_path}"
        self.port = port
        self.mode = "ok"
        self.requests = 0
        super().__init__("booking-peer")
        self._runner: web.AppRunner | None = None
        self._db: Database | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        self.run(self._start(), timeout=60)

    async def _start(self) -> None:
        self._db = Database(self.db_url)
        await self._db.migrate()
        source = DbSlotSource(self._db, timeout=5)
        await source.seed_slots(demo_slots(date.today(), load_sites(CITAS_DIR / "sites.yaml")))
        app = booking_service_app(source)
        app.middlewares.append(self._faults)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests += 1
        if self.mode == "fail":
            return web.json_response({"message": "injected failure"}, status=503)
        if self.mode == "slow":
            await asyncio.sleep(30)  # beyond the controller's request timeout
        response: web.StreamResponse = await handler(request)
        return response

    def stop(self) -> None:
        async def _stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            if self._db is not None:
                await self._db.close()

        self.run(_stop())
        self.close()
