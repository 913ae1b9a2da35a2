"""AriCounters: route templates, per-call figures, the snapshot file and /metrics."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.ari.counters import (
    ARI_PATH_WORDS,
    ENV_VAR,
    AriCounters,
    AriCountersCollector,
    route_template,
    snapshot_path,
)
from ivr.ops.metrics import Metrics

# Every path template the client writes (ivr/ari/client.py), with a concrete
# request path for it and the route label both must give.
CLIENT_ROUTES = [
    ("/asterisk/ping", "/asterisk/ping", "/asterisk/ping"),
    ("/asterisk/info", "/asterisk/info", "/asterisk/info"),
    ("/applications", "/applications", "/applications"),
    (
        "/applications/{applicationName}/eventFilter",
        "/applications/citas-ivr/eventFilter",
        "/applications/{id}/eventFilter",
    ),
    ("/channels", "/channels", "/channels"),
    ("/channels/{channelId}", "/channels/1700000000.12", "/channels/{id}"),
    ("/channels/{channelId}/answer", "/channels/1700000000.12/answer", "/channels/{id}/answer"),
    ("/channels/{channelId}/ring", "/channels/abc/ring", "/channels/{id}/ring"),
    ("/channels/{channelId}/silence", "/channels/abc/silence", "/channels/{id}/silence"),
    ("/channels/{channelId}/moh", "/channels/abc/moh", "/channels/{id}/moh"),
    ("/channels/{channelId}/continue", "/channels/a/continue", "/channels/{id}/continue"),
    ("/channels/{channelId}/variable", "/channels/a/variable", "/channels/{id}/variable"),
    (
        "/channels/{channelId}/play/{playbackId}",
        "/channels/1700000000.12/play/1700000000.12-welcome-3",
        "/channels/{id}/play/{id}",
    ),
    ("/playbacks/{playbackId}", "/playbacks/pb-1", "/playbacks/{id}"),
    # Several controllers (ivr.multi): the adopter and the CITAS_CONTROLLERS global.
    ("/applications/{applicationName}", "/applications/citas-ivr-2", "/applications/{id}"),
    ("/asterisk/variable", "/asterisk/variable", "/asterisk/variable"),
    ("/channels/{channelId}/move", "/channels/1700000000.12/move", "/channels/{id}/move"),
]


@pytest.mark.parametrize(("template", "concrete", "route"), CLIENT_ROUTES)
def test_client_templates_and_concrete_paths_give_one_route(
    template: str, concrete: str, route: str
) -> None:
    assert route_template(template) == route
    assert route_template(concrete) == route


@pytest.mark.parametrize(
    ("path", "route"),
    [
        # Other ARI routes (Asterisk 22 api-docs), ids in the middle and at the end.
        ("/applications/citas-ivr/eventFilter", "/applications/{id}/eventFilter"),
        ("/applications/{applicationName}/subscription", "/applications/{id}/subscription"),
        ("/asterisk/variable", "/asterisk/variable"),
        ("/bridges/b1/addChannel", "/bridges/{id}/addChannel"),
        ("/endpoints/PJSIP/6001", "/endpoints/{id}/{id}"),
        ("/recordings/live/rec-1/stop", "/recordings/live/{id}/stop"),
        ("/channels/{channelId}/move", "/channels/{id}/move"),
        # Query strings, trailing and doubled slashes do not make new routes.
        ("/channels/x/play/y?media=sound:hello", "/channels/{id}/play/{id}"),
        ("/channels/x/answer/", "/channels/{id}/answer"),
        ("//channels//x", "/channels/{id}"),
        # An id that looks like a path word only where ARI has no such word.
        ("/channels/answer-1/answer", "/channels/{id}/answer"),
        ("/", "/"),
    ],
)
def test_route_template_table(path: str, route: str) -> None:
    assert route_template(path) == route


def test_every_client_template_is_covered() -> None:
    """The table above lists each template ivr/ari/client.py writes (kept in step)."""
    source = (Path(__file__).parents[2] / "ivr" / "ari" / "client.py").read_text()
    used = set(re.findall(r'"(/[A-Za-z][A-Za-z{}/]*)"', source))
    listed = {t for t, _, _ in CLIENT_ROUTES}
    # Suffixes appended to "/channels/{channelId}" (the _channel_post actions).
    used = {u if u.startswith(("/channels", "/asterisk", "/applications", "/playbacks"))
            else "/channels/{channelId}" + u for u in used}  # fmt: skip
    assert used <= listed, used - listed


ID_CHARS = st.text(alphabet="abcdef0123456789.-_", min_size=1, max_size=24)


@given(channel=ID_CHARS, playback=ID_CHARS)
def test_any_ids_give_the_template_route(channel: str, playback: str) -> None:
    concrete = f"/channels/{channel}/play/{playback}"
    assert route_template(concrete) == "/channels/{id}/play/{id}"


@given(path=st.lists(st.sampled_from(sorted(ARI_PATH_WORDS)), min_size=1, max_size=5))
def test_path_words_are_kept(path: list[str]) -> None:
    assert route_template("/" + "/".join(path)) == "/" + "/".join(path)


@given(
    path=st.lists(
        st.one_of(st.sampled_from(sorted(ARI_PATH_WORDS)), ID_CHARS, st.just("{channelId}")),
        max_size=6,
    )
)
def test_route_template_is_idempotent(path: list[str]) -> None:
    """A route label is its own template: counting labels again changes nothing."""
    route = route_template("/" + "/".join(path))
    assert route_template(route) == route


def smoke_call(c: AriCounters, channel: str) -> None:
    """What one smoke call sends and receives (the event types, in order)."""
    for ev in ("StasisStart", "ChannelDtmfReceived", "StasisEnd", "ChannelDestroyed"):
        c.event(ev)
    c.request("POST", "/channels/{channelId}/answer")
    c.request("POST", f"/channels/{channel}/play/{channel}-1")
    c.request("POST", "/channels/{channelId}/play/{playbackId}")
    c.request("DELETE", "/channels/{channelId}")


def test_snapshot_per_call() -> None:
    c = AriCounters()
    assert c.snapshot()["per_call"] == {"events": None, "requests": None}
    for n in range(4):
        smoke_call(c, f"1700000000.{n}")
    snap = c.snapshot()
    assert snap["calls"] == 4
    assert snap["events"]["ChannelDtmfReceived"] == 4
    assert snap["requests"] == {
        "DELETE /channels/{id}": 4,
        "POST /channels/{id}/answer": 4,
        "POST /channels/{id}/play/{id}": 8,
    }
    assert snap["per_call"] == {"events": 4.0, "requests": 4.0}
    assert snap["per_call_by_route"]["POST /channels/{id}/play/{id}"] == 2.0
    assert snap["per_call_by_type"]["StasisEnd"] == 1.0


def test_write_if_asked(tmp_path: Path) -> None:
    c = AriCounters()
    smoke_call(c, "1")
    assert c.write_if_asked({}) is None
    target = tmp_path / "counts-{pid}.json"
    written = c.write_if_asked({ENV_VAR: str(target)})
    assert written == tmp_path / f"counts-{os.getpid()}.json"
    data = json.loads(written.read_text())
    assert data["calls"] == 1 and data["pid"] == os.getpid()
    assert data["requests"]["POST /channels/{id}/play/{id}"] == 2
    assert not list(tmp_path.glob("*.tmp"))
    worker = c.write_if_asked({ENV_VAR: str(tmp_path / "c.json")}, tag="slot2")
    assert worker == tmp_path / "c.slot2.json" and worker.is_file()


@pytest.mark.parametrize(
    ("value", "tag", "path"),
    [
        ("/tmp/x.json", "", "/tmp/x.json"),  # the main process
        ("/tmp/x-{pid}.json", "", "/tmp/x-7.json"),
        ("/tmp/x.json", "slot2", "/tmp/x.slot2.json"),  # a voice worker
        ("/tmp/x-{pid}.json", "slot2", "/tmp/x-7.json"),  # the pid is unique already
        ("/tmp/counts", "slot3", "/tmp/counts.slot3"),
    ],
)
def test_snapshot_path(value: str, tag: str, path: str) -> None:
    assert snapshot_path(value, pid=7, tag=tag) == Path(path)


def test_metrics_exposition() -> None:
    metrics = Metrics()
    c = AriCounters()
    metrics.registry.register(AriCountersCollector(c))
    smoke_call(c, "1700000000.1")
    text = metrics.exposition().decode()
    assert 'citas_ari_events_total{type="ChannelDtmfReceived"} 1.0' in text
    assert 'citas_ari_requests_total{method="POST",route="/channels/{id}/play/{id}"} 2.0' in text
    assert 'citas_ari_requests_total{method="DELETE",route="/channels/{id}"} 1.0' in text
    assert "citas_ari_calls_total 1.0" in text
