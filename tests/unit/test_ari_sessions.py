"""The HTTP sessions controllers open to Asterisk stay within what Asterisk accepts.

Observed (the bench of 2026-11-30, 640 smoke calls on 2 controllers): each
controller's aiohttp pool could open 100 sockets, Asterisk's http.conf accepted
100 sessions in all, and Asterisk dropped connections mid-request ("Server
disconnected"): answers and plays failed on 114 of 1280 calls.
"""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest

from ivr.ari.client import ARI_CONNECTIONS, ARI_KEEPALIVE_S, AriClient, ari_sessions_needed
from ivr.sandbox.render import render_all, template_values
from ivr.settings import MAX_CONTROLLERS, Settings

ASTERISK_SESSION_KEEP_ALIVE_S = 15.0  # http.conf session_keep_alive, Asterisk's default


def rendered_session_limit(tmp_path: Path) -> int:
    render_all(tmp_path, template_values(Settings.from_env({}), "/srv/citas/x"))
    text = (tmp_path / "http.conf").read_text(encoding="utf-8")
    found = re.search(r"^sessionlimit\s*=\s*(\d+)\s*$", text, re.MULTILINE)
    assert found, "http.conf sets no sessionlimit: Asterisk's default is 100"
    return int(found.group(1))


@pytest.mark.parametrize("controllers", [1, 2, 4, 8, 16, 32, MAX_CONTROLLERS])
def test_asterisk_accepts_every_socket_the_controllers_may_open(
    tmp_path: Path, controllers: int
) -> None:
    # Each process: its REST pool at its fullest, plus its event websocket.
    opened = controllers * (ARI_CONNECTIONS + 1)

    assert opened < ari_sessions_needed(controllers) <= rendered_session_limit(tmp_path)


async def test_the_clients_own_pool_is_bounded_and_closes_idle_sockets_first() -> None:
    client = AriClient("http://127.0.0.1:1/ari", "u", "p")
    try:
        connector = client._get_session().connector
        assert isinstance(connector, aiohttp.TCPConnector)
        assert connector.limit == ARI_CONNECTIONS
        # Closed by us before Asterisk closes it under a request.
        assert connector._keepalive_timeout == ARI_KEEPALIVE_S < ASTERISK_SESSION_KEEP_ALIVE_S
    finally:
        await client.close()


async def test_a_borrowed_session_is_left_as_its_owner_made_it() -> None:
    async with aiohttp.ClientSession() as session:
        client = AriClient("http://127.0.0.1:1/ari", "u", "p", session=session)
        assert client._get_session() is session
        await client.close()
        assert not session.closed
