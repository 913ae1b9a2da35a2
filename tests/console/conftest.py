"""The ops console in a real headless Chromium, against ``ivr ops serve`` in a subprocess.

Debian's ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` are required: if they
are missing the tests fail (they are never skipped), and Selenium Manager is never
asked to download anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import unused_port
from selenium import webdriver

from tests.chromium import chromium
from tests.leaks import pytest_configure, pytest_sessionfinish  # noqa: F401

START_TIMEOUT_S = 30.0


@dataclass
class OpsServer:
    url: str
    env: dict[str, str]

    def cli(self, *argv: str) -> str:
        """Run ``ivr`` on the same instance; its stdout (fails on a non-zero exit)."""
        done = subprocess.run(
            [sys.executable, "-m", "ivr.cli", *argv],
            env=self.env, capture_output=True, text=True, errors="replace", timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def token(self, name: str, role: str) -> str:
        return self.cli("ops", "token", "create", name, "--role", role).strip()

    def flag(self, name: str) -> dict[str, Any]:
        flags = json.loads(self.cli("flags", "list", "--json"))
        found: dict[str, Any] = next(f for f in flags if f["name"] == name)
        return found

    def request(self, method: str, path: str, token: str, body: object) -> tuple[int, Any]:
        req = urllib.request.Request(
            self.url + path, method=method, data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.load(exc)


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"ivr ops serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/health/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)  # polling with a deadline: the server tells us when it is up
    raise AssertionError(f"ivr ops serve did not become ready at {url} in {START_TIMEOUT_S} s")


@pytest.fixture
def ops_server(tmp_path: Path) -> Iterator[OpsServer]:
    port = unused_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITAS_")}
    env |= {"CITAS_STATE_DIR": str(tmp_path), "CITAS_OPS_PORT": str(port)}
    log = (tmp_path / "ops-serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "ops", "serve"], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield OpsServer(url, env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    assert process.returncode == 0, (tmp_path / "ops-serve.log").read_text()


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    # ``ivr ops serve`` listens on an unused (ephemeral) port: none is on
    # Chromium's unsafe list (tests/chromium.py).
    with chromium(window="1400,1000") as driver:
        yield driver
