"""Our ARI client and event parser against the API description the real Asterisk serves."""

from __future__ import annotations

import re

import pytest

from ivr.ari import EVENT_FILTER, HANDLED_EVENT_TYPES, AriClient, AriError, AriNotFound
from tests.e2e.conftest import ControllerProcess, Sandbox, wait_until

pytestmark = pytest.mark.e2e


def documented_operations(sandbox: Sandbox) -> dict[tuple[str, str], set[str]]:
    """(HTTP method, path template) -> parameter names, from /ari/api-docs."""
    listing = sandbox.ari_get("/api-docs/resources.json")
    ops: dict[tuple[str, str], set[str]] = {}
    for api in listing["apis"]:
        name = api["path"].rsplit("/", 1)[-1].replace("{format}", "json")
        resource = sandbox.ari_get(f"/api-docs/{name}")
        for entry in resource["apis"]:
            path = entry["path"].removeprefix("/ari")
            for op in entry["operations"]:
                params = {
                    p["name"] for p in op.get("parameters", []) if p.get("paramType") != "path"
                }
                ops[(op["httpMethod"], path)] = params
    return ops


async def exercise_every_call(client: AriClient) -> None:
    gone = "no-such-channel-0"
    await client.ping()
    await client.asterisk_info()
    await client.list_channels()
    await client.list_applications()
    calls = [
        client.get_channel(gone),
        client.answer(gone),
        client.ring(gone),
        client.start_silence(gone),
        client.start_moh(gone, "default"),
        client.hangup(gone, "normal"),
        client.continue_in_dialplan(
            gone, context="citas-agents", extension="5550001", priority=1, label="x"
        ),
        client.set_variable(gone, "CITAS_X", "1"),
        client.get_variable(gone, "CITAS_X"),
        client.play(gone, ["sound:citas/goodbye"], playback_id="pb-contract", lang="es"),
        client.stop_playback("no-such-playback"),
        client.set_event_filter("no-such-app-0", EVENT_FILTER),
    ]
    for call in calls:
        with pytest.raises(AriError) as info:
            await call
        # 404 for the missing channel (app): the route exists and accepted our parameters.
        assert isinstance(info.value, AriNotFound), info.value
    # The escalation call's originate (ivr/escalation/call.py): an endpoint that does
    # not exist is refused, after the route took our parameters.
    with pytest.raises(AriError):
        await client.originate(
            "esc-contract", endpoint="PJSIP/no-such-endpoint-0", app="citas-contract",
            app_args=("escalation", "contract"), caller_id='"x" <1>', timeout_s=1,
        )  # fmt: skip


async def test_every_rest_call_exists_in_asterisk_api_docs(sandbox: Sandbox) -> None:
    s = sandbox.settings
    async with AriClient(s.ari_url, s.ari_user, s.ari_password, timeout=5) as client:
        await exercise_every_call(client)
        made = client.calls_made
    documented = documented_operations(sandbox)
    assert len(made) >= 15
    for method, template, params in sorted(made, key=str):
        key = (method, template)
        assert key in documented, f"{method} {template} is not in Asterisk's api-docs"
        unknown = set(params) - documented[key]
        assert not unknown, f"{method} {template}: parameters {unknown} not documented"


def test_handled_event_types_exist_in_events_json(sandbox: Sandbox) -> None:
    models = sandbox.ari_get("/api-docs/events.json")["models"]
    for event_type in (*HANDLED_EVENT_TYPES, *EVENT_FILTER):
        assert event_type in models, f"{event_type} is not an event of this Asterisk"
    dtmf = models["ChannelDtmfReceived"]["properties"]
    assert {"digit", "duration_ms", "channel"} <= set(dtmf)
    assert re.match(r"^22\.", sandbox.ari_get("/asterisk/info")["system"]["version"])


def test_the_controller_sets_its_event_filter_at_connect(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    # ivr serve's reconcile (at every connect) sets the app's filter: Asterisk reports it.
    app = sandbox.settings.app_name
    wait_until(sandbox.app_registered, 30, f"app {app} registered")

    def allowed() -> list[str]:
        return [e["type"] for e in sandbox.ari_get(f"/applications/{app}")["events_allowed"]]

    wait_until(lambda: allowed() == list(EVENT_FILTER), 10, "the event filter set")
    assert "ChannelVarset" not in allowed()
