#!/usr/bin/env python3
"""Compare AMI Redirect, BlindTransfer and Atxfer for moving a bridged caller.

The question (issue 12 §5, docs/desk/levels.md "Why Redirect"): an agent's
caller must move to another queue's extension with the IVR context intact
(the ``CITAS_*`` variables, the caller's channel and Uniqueid, which are the
journey key) while the agent's leg ends. This script measures each AMI way of
doing it on a running sandbox (``ivr sandbox up``) and prints one JSON line per
method:

- ``same_channel``: the channel that arrives at the target is the caller's own
  (same name and Uniqueid, so AMI events and the journey key still match);
- ``vars``: the ``CITAS_*`` variables read at the target (set before the move);
- ``agent_bye_ms``: when the first agent's sipp got its BYE (ms after the action);
- ``target_ms``: when the target extension started (ms after the action);
- ``bridged_with_target``: the caller ended up talking to the target's phone.

Usage (the sandbox's own instance and ports)::

    CITAS_INSTANCE=e2e-levels CITAS_PORT_OFFSET=13500 \
        .venv/bin/python scripts/desk-transfer-compare.py [redirect blindtransfer atxfer]

It adds two extensions to the running dialplan (``dialplan add extension``;
gone at the next reload): 5559990 in ``citas-entry`` (answer, set the context,
Dial the tester agent ``PJSIP/agent``) and 5559991 in ``citas-agents``
(report the arriving channel with a ``UserEvent``, Dial ``PJSIP/6001``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ivr.ami.manager import AmiConnection
from ivr.sandbox.render import support_port
from ivr.scenarios.sippxml import agent_xml
from ivr.settings import Settings

ENTRY, TARGET = "5559990", "5559991"

CALLER_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="lvl caller">
<send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "lvl" <sip:3002222222@[local_ip]:[local_port]>;tag=[pid]Lvl[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:caller@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=tester 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [auto_media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="200" rtd="true" rrs="true"/>
<send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "lvl" <sip:3002222222@[local_ip]:[local_port]>;tag=[pid]Lvl[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
[routes]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:caller@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
<recv request="BYE" timeout="60000"/>
<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"""

ENTRY_PLAN = [
    "Answer()",
    "Set(__CITAS_SEGMENT=non_target)",
    "Set(__CITAS_REASON=non-target)",
    "Set(__CITAS_CALL_ID=${CHANNEL(pjsip,call-id)})",
    "Dial(PJSIP/agent,60)",
    "Hangup()",
]
TARGET_PLAN = [
    "UserEvent(LvlArrived,Chan: ${CHANNEL},Uid: ${UNIQUEID},Linked: ${CHANNEL(linkedid)},"
    "Seg: ${CITAS_SEGMENT},Reason: ${CITAS_REASON},Call: ${CITAS_CALL_ID},"
    "Level: ${CITAS_LEVEL},Prev: ${CITAS_DESK_PREV},Bt: ${BLINDTRANSFER},At: ${ATTENDEDTRANSFER})",
    "Dial(PJSIP/6001,30)",
    "Hangup()",
]


def sipp(args: list[str], workdir: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sipp", "-i", "127.0.0.1", "-mi", "127.0.0.1", "-nostdin", "-trace_msg",
         "-message_file", str(workdir / f"{name}.log"), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def add_plan(ami: AmiConnection, context: str, exten: str, apps: list[str]) -> None:
    try:  # absent on the first run: Asterisk answers Error
        await ami.command(f"dialplan remove extension {exten}@{context}")
    except Exception:  # noqa: BLE001
        pass
    for prio, app in enumerate(apps, 1):
        out = await ami.command(f'dialplan add extension {exten},{prio},"{app}" into {context}')
        assert "added" in out.lower(), out


async def run(method: str, settings: Settings, workdir: Path) -> dict[str, Any]:
    p = settings.ports
    ami = AmiConnection(settings.host, p.ami, settings.ami_user, settings.ami_password)
    events: list[tuple[float, dict[str, str]]] = []

    async def record(event: Any) -> None:
        events.append((time.monotonic(), dict(event)))

    ami.on_event("*", record)
    await ami.connect()
    await add_plan(ami, "citas-entry", ENTRY, ENTRY_PLAN)
    await add_plan(ami, "citas-agents", TARGET, TARGET_PLAN)
    (workdir / "agent.xml").write_text(agent_xml(hold_ms=30_000))
    (workdir / "l2.xml").write_text(agent_xml(hold_ms=3_000))
    (workdir / "caller.xml").write_text(CALLER_XML)
    agent = sipp(["-p", str(p.agent_sip), "-sf", str(workdir / "agent.xml"), "-m", "1"], workdir, f"{method}-agent")
    l2 = sipp(["-p", str(support_port(settings, "6001")), "-sf", str(workdir / "l2.xml"), "-m", "1"], workdir, f"{method}-l2")
    time.sleep(0.5)
    caller = sipp([f"{settings.host}:{p.sip}", "-s", ENTRY, "-sf", str(workdir / "caller.xml"), "-m", "1"], workdir, f"{method}-caller")  # fmt: skip

    def find(pred: Any) -> tuple[float, dict[str, str]] | None:
        return next(((t, e) for t, e in events if pred(e)), None)

    deadline = time.monotonic() + 20
    bridge: dict[str, str] = {}
    while time.monotonic() < deadline:
        entered = [e for _, e in events if e.get("Event") == "BridgeEnter"]
        ids = {e["BridgeUniqueid"] for e in entered}
        for bid in ids:
            members = [e for e in entered if e["BridgeUniqueid"] == bid]
            if len(members) >= 2:
                for m in members:
                    key = "agent" if m["Channel"].startswith("PJSIP/agent") else "caller"
                    bridge[key] = m["Channel"]
                    bridge[key + "_uid"] = m["Uniqueid"]
        if len(bridge) == 4:
            break
        await asyncio.sleep(0.1)
    assert len(bridge) == 4, f"no bridge: {bridge}"
    await asyncio.sleep(1.0)
    t0 = time.monotonic()
    result: dict[str, Any] = {"method": method}
    try:
        if method in ("redirect", "blindtransfer"):
            for name, value in (("__CITAS_LEVEL", "2"), ("__CITAS_DESK_PREV", "c-123")):
                await ami._action({"Action": "Setvar", "Channel": bridge["caller"], "Variable": name, "Value": value})
        if method == "redirect":
            resp = await ami._action({"Action": "Redirect", "Channel": bridge["caller"], "Context": "citas-agents", "Exten": TARGET, "Priority": "1"})
        elif method == "blindtransfer":
            resp = await ami._action({"Action": "BlindTransfer", "Channel": bridge["agent"], "Context": "citas-agents", "Exten": TARGET})
        else:
            # panoramisk reads "...successfully queued" as an async Originate and looks up the
            # Async header (KeyError, connection dropped) unless the action carries one.
            resp = await ami._action({"Action": "Atxfer", "Channel": bridge["agent"], "Context": "citas-agents", "Exten": TARGET, "Async": "false"})
        result["response"] = resp.get("Message")
    except Exception as exc:  # noqa: BLE001 - a comparison reports every outcome
        result["error"] = f"{type(exc).__name__}: {exc}"
    arrival = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and arrival is None:
        arrival = find(lambda e: e.get("Event") == "UserEvent" and e.get("UserEvent") == "LvlArrived")
        await asyncio.sleep(0.1)
    if method == "atxfer" and arrival is not None:
        # The transferer (first agent) hangs up once the target answers: completes the transfer.
        await asyncio.sleep(1.5)
        try:
            await ami._action({"Action": "Hangup", "Channel": bridge["agent"]})
        except Exception as exc:  # noqa: BLE001
            result["hangup_error"] = str(exc)
    await asyncio.sleep(2.5)
    if arrival is not None:
        t, e = arrival
        result["target_ms"] = round((t - t0) * 1000)
        result["arrived"] = {k: e.get(k, "") for k in ("Chan", "Uid", "Linked", "Seg", "Reason", "Call", "Level", "Prev", "Bt", "At")}
        result["same_channel"] = e.get("Chan") == bridge["caller"] and e.get("Uid") == bridge["caller_uid"]
    hang = find(lambda e: e.get("Event") == "Hangup" and e.get("Channel") == bridge["agent"])
    result["agent_hangup_ms"] = round((hang[0] - t0) * 1000) if hang else None
    result["caller_hung_up"] = find(lambda e: e.get("Event") == "Hangup" and e.get("Channel") == bridge["caller"]) is not None
    entered = [e for t, e in events if t >= t0 and e.get("Event") == "BridgeEnter"]
    l2_bridges = {e["BridgeUniqueid"] for e in entered if e["Channel"].startswith("PJSIP/6001")}
    result["bridged_with_target"] = [e["Channel"] for e in entered if e["BridgeUniqueid"] in l2_bridges and not e["Channel"].startswith("PJSIP/6001")]
    result["transfer_events"] = sorted({e["Event"] for t, e in events if t >= t0 and "Transfer" in e.get("Event", "")})
    for proc in (caller, agent, l2):
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=5)
    result["agent_log_bye"] = "BYE sip" in (workdir / f"{method}-agent.log").read_text(errors="replace")
    await ami.close()
    return result


async def main(methods: list[str]) -> None:
    settings = Settings.from_env()
    for method in methods:
        with tempfile.TemporaryDirectory(prefix=f"lvl-{method}-") as tmp:
            print(json.dumps(await run(method, settings, Path(tmp)), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or ["redirect", "blindtransfer", "atxfer"]))
