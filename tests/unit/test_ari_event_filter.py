"""The ARI event filter lets through every event type the IVR uses.

The kind of fault: code that waits for an event type the application's filter
(``ivr.ari.EVENT_FILTER``, ``PUT /applications/{app}/eventFilter``) does not
allow never sees it, and a call hangs until its safety timeout. Checked three
ways: every type the parser handles is allowed; every event class or type
string any module of ``ivr/`` refers to is allowed (a source scan, itself
tested over the ways code can name an event type); and the filter is what the
controller sends at connect (``AriClient.set_event_filter`` against an
in-process server shaped like Asterisk's).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import ivr
import ivr.ari.events as events_module
from ivr.ari import EVENT_FILTER, HANDLED_EVENT_TYPES, AriClient, AriNotFound
from ivr.ari.events import Event

IVR_ROOT = Path(ivr.__file__).parent


def event_class_names() -> dict[str, str]:
    """Public ``Event`` subclasses of ``ivr.ari.events`` -> the ARI type they parse."""
    return {
        name: name
        for name, obj in vars(events_module).items()
        if inspect.isclass(obj) and issubclass(obj, Event) and obj is not Event
        if not name.startswith("_")
    }


def _type_strings(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return {s for elt in node.elts for s in _type_strings(elt)}
    return set()


def _is_type_field(node: ast.expr) -> bool:
    # ev.type, data["type"], data.get("type")
    if isinstance(node, ast.Attribute) and node.attr == "type":
        return True
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "type"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return (
            node.func.attr == "get"
            and bool(node.args)
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "type"
        )
    return False


def event_types_used(source: str, *, ari_module: bool) -> set[str]:
    """The ARI event types ``source`` refers to: event classes it names (isinstance,
    match patterns, annotations) and, in a module that imports ``ivr.ari``, the
    strings it compares a ``type`` field with (``ev.type == "ChannelVarset"``)."""
    classes = event_class_names()
    used: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and node.id in classes:
            used.add(classes[node.id])
        elif isinstance(node, ast.Attribute) and node.attr in classes:
            used.add(classes[node.attr])
        elif isinstance(node, ast.alias) and node.name in classes:
            used.add(classes[node.name])
        elif ari_module and isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_type_field(side) for side in sides):
                for side in sides:
                    used |= _type_strings(side)
        elif ari_module and isinstance(node, ast.MatchValue) and isinstance(node.value, ast.Constant):
            used |= _type_strings(node.value)
    return used


def _imports_ari(source: str) -> bool:
    return "ivr.ari" in source


# ----------------------------------------------------------------------------------------
def test_every_handled_event_type_is_in_the_filter() -> None:
    missing = [t for t in HANDLED_EVENT_TYPES if t not in EVENT_FILTER]
    assert not missing, f"handled but filtered out (would never arrive): {missing}"
    assert len(set(EVENT_FILTER)) == len(EVENT_FILTER)


def test_every_event_class_is_a_handled_type() -> None:
    # A class without a parser would be dead code that looks handled.
    assert set(event_class_names()) <= set(HANDLED_EVENT_TYPES)


@pytest.mark.parametrize(
    ("source", "ari_module", "expected"),
    [
        ("isinstance(ev, StasisEnd)", False, {"StasisEnd"}),
        ("isinstance(ev, StasisEnd | ChannelDestroyed)", False, {"StasisEnd", "ChannelDestroyed"}),
        ("isinstance(ev, (PlaybackFinished, ChannelDtmfReceived))", False,
         {"PlaybackFinished", "ChannelDtmfReceived"}),
        ("from ivr.ari import ChannelDestroyed", False, {"ChannelDestroyed"}),
        ("isinstance(ev, ari.ApplicationReplaced)", False, {"ApplicationReplaced"}),
        ("match ev:\n    case StasisStart(): pass", False, {"StasisStart"}),
        ("def f(ev: ChannelDestroyed) -> None: ...", False, {"ChannelDestroyed"}),
        ('if ev.type == "ChannelVarset": pass', True, {"ChannelVarset"}),
        ('if "Dial" == ev.type: pass', True, {"Dial"}),
        ('if ev.type in ("BridgeCreated", "BridgeDestroyed"): pass', True,
         {"BridgeCreated", "BridgeDestroyed"}),
        ('if ev.raw["type"] == "ChannelTalkingStarted": pass', True, {"ChannelTalkingStarted"}),
        ('if msg.get("type") == "RecordingFinished": pass', True, {"RecordingFinished"}),
        ('match ev.type:\n    case "ChannelUserevent": pass', True, {"ChannelUserevent"}),
        # Not ARI: a WhatsApp message's type in a module without ivr.ari.
        ('if message.type == "text": pass', False, set()),
        ("x = 1", True, set()),
    ],
)  # fmt: skip
def test_the_scan_finds_each_way_code_names_an_event_type(
    source: str, ari_module: bool, expected: set[str]
) -> None:
    assert event_types_used(source, ari_module=ari_module) == expected


def test_no_module_of_ivr_uses_an_event_type_the_filter_drops() -> None:
    used_by: dict[str, set[str]] = {}
    for path in sorted(IVR_ROOT.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for event_type in event_types_used(source, ari_module=_imports_ari(source)):
            used_by.setdefault(event_type, set()).add(str(path.relative_to(IVR_ROOT)))
    # The scan sees the real users (a scan that finds nothing proves nothing).
    assert {"StasisStart", "ChannelDtmfReceived", "PlaybackFinished"} <= set(used_by)
    assert "voice.py" in used_by["ChannelDtmfReceived"]
    assert "escalation/call.py" in used_by["ChannelDestroyed"]
    dropped = {t: sorted(files) for t, files in used_by.items() if t not in EVENT_FILTER}
    assert not dropped, f"event types used but not in EVENT_FILTER: {dropped}"


# ----------------------------------------------------------------------------------------
@pytest.fixture
async def asterisk_filter() -> AsyncIterator[tuple[str, list[Any]]]:
    """An ARI endpoint answering PUT /applications/{app}/eventFilter like Asterisk 22
    (200 with the application, its ``events_allowed`` as sent; 404 for another app)."""
    bodies: list[Any] = []

    async def put_filter(request: web.Request) -> web.Response:
        body = await request.json()
        bodies.append(body)
        if request.match_info["app"] != "citas-ivr":
            return web.json_response({"message": "Application not found"}, status=404)
        return web.json_response(
            {
                "name": "citas-ivr",
                "channel_ids": [],
                "bridge_ids": [],
                "endpoint_ids": [],
                "device_names": [],
                "events_allowed": body["allowed"],
                "events_disallowed": body["disallowed"],
            }
        )

    app = web.Application()
    app.router.add_put("/ari/applications/{app}/eventFilter", put_filter)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("/ari")), bodies
    finally:
        await server.close()


async def test_set_event_filter_sends_the_allowed_types(
    asterisk_filter: tuple[str, list[Any]],
) -> None:
    url, bodies = asterisk_filter
    async with AriClient(url, "citas", "pw", timeout=2.0) as client:
        app = await client.set_event_filter("citas-ivr", EVENT_FILTER)
        with pytest.raises(AriNotFound):
            await client.set_event_filter("not-registered", EVENT_FILTER)
        made = client.calls_made
    assert bodies[0] == {"allowed": [{"type": t} for t in EVENT_FILTER], "disallowed": []}
    assert [a["type"] for a in app["events_allowed"]] == list(EVENT_FILTER)
    assert ("PUT", "/applications/{applicationName}/eventFilter", frozenset()) in made
