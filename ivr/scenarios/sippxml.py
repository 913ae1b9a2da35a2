"""sipp XML for a scenario: the caller (UAC) and the agent (UAS).

Generated rather than hand-written so every scenario gets the same SIP
handling (record routes, CSeq, in-dialog INFO) and its own DTMF captures.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

from ivr.scenarios.rtpevents import write_pcap
from ivr.scenarios.spec import Scenario

_HEAD = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'


def _cdata(text: str) -> str:
    return "<![CDATA[\n" + text.strip("\n") + "\n\n]]>"


def _dialog_request(method: str, cseq: int, caller_id: str, extra: str = "", body: str = "") -> str:
    lines = [
        f"{method} [next_url] SIP/2.0",
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]",
        f"From: <sip:{caller_id}@[local_ip]:[local_port]>;tag=[pid]Citas[call_number]",
        "To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]",
        "[routes]",
        "Call-ID: [call_id]",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:caller@[local_ip]:[local_port]>",
        "Max-Forwards: 70",
    ]
    if extra:
        lines.append(extra)
    lines.append("Content-Length: [len]")
    return "\n".join(lines) + "\n\n" + body


def caller_xml(scenario: Scenario, workdir: Path) -> str:
    # Several callers: their numbers come from sipp's injection file, one line per call.
    caller = "[field0]" if len(scenario.caller_ids) > 1 else scenario.caller_id
    invite = "\n".join(
        [
            "INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0",
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]",
            f'From: "Citas tester" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]Citas[call_number]',
            "To: <sip:[service]@[remote_ip]:[remote_port]>",
            "Call-ID: [call_id]",
            "CSeq: 1 INVITE",
            "Contact: <sip:caller@[local_ip]:[local_port]>",
            "Max-Forwards: 70",
            "Content-Type: application/sdp",
            "Content-Length: [len]",
            "",
            "v=0",
            "o=tester 53655765 2353687637 IN IP[local_ip_type] [local_ip]",
            "s=-",
            "c=IN IP[media_ip_type] [media_ip]",
            "t=0 0",
            "m=audio [auto_media_port] RTP/AVP 0 8 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=sendrecv",
        ]
    )
    out = [_HEAD, f"<scenario name={quoteattr(scenario.name)}>"]
    out.append(f'<send retrans="500">{_cdata(invite)}</send>')
    for code in (100, 180, 183):
        out.append(f'<recv response="{code}" optional="true"/>')
    out.append('<recv response="200" rtd="true" rrs="true"/>')
    out.append(f"<send>{_cdata(_dialog_request('ACK', 1, caller))}</send>")
    cseq = 2
    seq, timestamp = 1000, 16000
    hung_up = False
    for index, step in enumerate(scenario.steps):
        if step.kind == "wait":
            out.append(f'<pause milliseconds="{int(step.seconds * 1000)}"/>')
        elif step.kind == "dtmf" and step.mode == "rfc4733":
            pcap = workdir / f"step{index:02d}.pcap"
            length = write_pcap(pcap, step.digits, seq=seq, timestamp=timestamp)
            seq += 100 * len(step.digits)
            timestamp += 8000 * 5 * len(step.digits)
            out.append(f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
            out.append(f'<pause milliseconds="{int(length * 1000) + 200}"/>')
        elif step.kind == "dtmf":
            for digit in step.digits:
                body = f"Signal={digit}\nDuration=160\n"
                info = _dialog_request(
                    "INFO", cseq, caller, "Content-Type: application/dtmf-relay", body
                )
                out.append(f"<send>{_cdata(info)}</send>")
                out.append('<recv response="200"/>')
                out.append('<pause milliseconds="150"/>')
                cseq += 1
        elif step.kind == "hangup":
            out.append(f"<send>{_cdata(_dialog_request('BYE', cseq, caller))}</send>")
            out.append('<recv response="200" crlf="true"/>')
            hung_up = True
            break
    if not hung_up:
        timeout_ms = int(scenario.timeout * 1000)
        out.append(f'<recv request="BYE" timeout="{timeout_ms}"/>')
        ok = "\n".join(
            [
                "SIP/2.0 200 OK",
                "[last_Via:]",
                "[last_From:]",
                "[last_To:]",
                "[last_Call-ID:]",
                "[last_CSeq:]",
                "Content-Length: 0",
            ]
        )
        out.append(f"<send>{_cdata(ok)}</send>")
    out.append('<ResponseTimeRepartition value="100, 500, 1000"/>')
    out.append("</scenario>\n")
    return "\n".join(out)


def agent_xml(hold_ms: int = 1500) -> str:
    """The agent answers, stays on the line ``hold_ms``, then hangs up."""

    def reply(code: str, sdp: bool = False) -> str:
        lines = [
            "SIP/2.0 " + code,
            "[last_Via:]",
            "[last_From:]",
            "[last_To:];tag=[pid]Agent[call_number]",
            "[last_Call-ID:]",
            "[last_CSeq:]",
            "Contact: <sip:agent@[local_ip]:[local_port]>",
        ]
        if sdp:
            lines += [
                "Content-Type: application/sdp",
                "Content-Length: [len]",
                "",
                "v=0",
                "o=agent 1 1 IN IP[local_ip_type] [local_ip]",
                "s=-",
                "c=IN IP[media_ip_type] [media_ip]",
                "t=0 0",
                "m=audio [media_port] RTP/AVP 0",
                "a=rtpmap:0 PCMU/8000",
            ]
        else:
            lines.append("Content-Length: 0")
        return "\n".join(lines)

    bye = "\n".join(
        [
            "BYE [next_url] SIP/2.0",
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]",
            "From: <sip:agent@[local_ip]:[local_port]>;tag=[pid]Agent[call_number]",
            "To: [$caller_from]",
            "[routes]",
            "Call-ID: [call_id]",
            "CSeq: 1 BYE",
            "Max-Forwards: 70",
            "Content-Length: 0",
        ]
    )
    return "\n".join(
        [
            _HEAD,
            '<scenario name="citas agent">',
            '<recv request="INVITE" rrs="true"><action>'
            '<ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller_from"/>'
            "</action></recv>",
            f"<send>{_cdata(reply('100 Trying'))}</send>",
            f"<send>{_cdata(reply('180 Ringing'))}</send>",
            f'<send retrans="500">{_cdata(reply("200 OK", sdp=True))}</send>',
            '<recv request="ACK"/>',
            f'<pause milliseconds="{hold_ms}"/>',
            f'<send retrans="500">{_cdata(bye)}</send>',
            '<recv response="200"/>',
            "</scenario>\n",
        ]
    )


def support_xml(workdir: Path, *, answer: bool, digits: str = "1", after_ms: int = 2500,
                bye_timeout_ms: int = 60000) -> str:  # fmt: skip
    """A support extension (the escalation call's person) as a sipp UAS, for one call.

    ``answer``: it answers (PCMU, RFC 4733 telephone-event 101, as Asterisk
    offers), waits ``after_ms`` into the summary, presses ``digits`` (RFC 4733,
    our own capture: ``ivr.scenarios.rtpevents``) and waits for Asterisk's BYE;
    otherwise it refuses the call with ``480 Temporarily Unavailable`` (a phone
    that does not answer: Asterisk's cause 19, ``no_answer``).
    """

    def reply(code: str, sdp: bool = False) -> str:
        lines = [
            "SIP/2.0 " + code, "[last_Via:]", "[last_From:]",
            "[last_To:];tag=[pid]Support[call_number]", "[last_Call-ID:]", "[last_CSeq:]",
            "Contact: <sip:support@[local_ip]:[local_port]>",
        ]  # fmt: skip
        if sdp:
            lines += [
                "Content-Type: application/sdp", "Content-Length: [len]", "",
                "v=0", "o=support 1 1 IN IP[local_ip_type] [local_ip]", "s=-",
                "c=IN IP[media_ip_type] [media_ip]", "t=0 0",
                "m=audio [auto_media_port] RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000",
                "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=sendrecv",
            ]  # fmt: skip
        else:
            lines.append("Content-Length: 0")
        return "\n".join(lines)

    ok = "\n".join(["SIP/2.0 200 OK", "[last_Via:]", "[last_From:]", "[last_To:]",
                    "[last_Call-ID:]", "[last_CSeq:]", "Content-Length: 0"])  # fmt: skip
    out = [_HEAD, '<scenario name="citas support extension">',
           '<recv request="INVITE" rrs="true"/>', f"<send>{_cdata(reply('100 Trying'))}</send>"]  # fmt: skip
    if not answer:
        out += [f"<send>{_cdata(reply('480 Temporarily Unavailable'))}</send>", '<recv request="ACK"/>']
    else:
        pcap = workdir / "support-dtmf.pcap"
        length = write_pcap(pcap, digits, seq=1000, timestamp=16000)
        out += [
            f"<send>{_cdata(reply('180 Ringing'))}</send>",
            f'<send retrans="500">{_cdata(reply("200 OK", sdp=True))}</send>',
            '<recv request="ACK"/>',
            f'<pause milliseconds="{after_ms}"/>',
            f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>',
            f'<pause milliseconds="{int(length * 1000) + 200}"/>',
            f'<recv request="BYE" timeout="{bye_timeout_ms}"/>',
            f"<send>{_cdata(ok)}</send>",
        ]
    out += ['<ResponseTimeRepartition value="100, 500, 1000"/>', "</scenario>\n"]
    return "\n".join(out)


def register_xml(extension: str, contact_port: int, expires_s: int) -> str:
    """One REGISTER of desk agent ``extension`` (a sipp UAC, one "call").

    The Contact names ``contact_port``, where the agent's answering sipp (``desk_agent_xml``)
    listens: the registrar keeps the Contact as sent (the agent endpoints do not
    rewrite it), so registering and answering are two sipp processes, each with
    its own port. ``expires_s`` 0 removes the registration (RFC 3261 §10.2.2).
    No authentication: the sandbox's agents have none (docs/desk/queues.md).
    """
    register = "\n".join(
        [
            "REGISTER sip:[remote_ip]:[remote_port] SIP/2.0",
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]",
            f"From: <sip:{extension}@[remote_ip]>;tag=[pid]Reg[call_number]",
            f"To: <sip:{extension}@[remote_ip]>",
            "Call-ID: [call_id]",
            "CSeq: 1 REGISTER",
            f"Contact: <sip:{extension}@[local_ip]:{contact_port}>",
            f"Expires: {expires_s}",
            "Max-Forwards: 70",
            "User-Agent: citas desk agent (sipp)",
            "Content-Length: 0",
        ]
    )
    return "\n".join(
        [
            _HEAD,
            f'<scenario name="citas desk agent {extension} register">',
            f'<send retrans="500">{_cdata(register)}</send>',
            '<recv response="100" optional="true"/>',
            '<recv response="200"/>',
            "</scenario>\n",
        ]
    )


def desk_agent_xml(*, answer_after_ms: int = 0, talk_ms: int = 5000) -> str:
    """A desk agent's phone as a sipp UAS, per call: rings ``answer_after_ms``, answers
    (PCMU, no RTP sent: like the tester agent), talks ``talk_ms`` then hangs up (BYE);
    a BYE from Asterisk first (the caller hung up) ends the call as well, and a
    CANCEL while ringing (app_queue gave up on this agent: ring timeout) ends it
    with 487. The INVITE's X-Citas-* headers are in sipp's message log.
    """

    def reply(code: str, sdp: bool = False) -> str:
        # The INVITE's CSeq, also in the 487 sent after a CANCEL (whose own CSeq differs).
        lines = [
            "SIP/2.0 " + code, "[last_Via:]", "[last_From:]",
            "[last_To:];tag=[pid]Desk[call_number]", "[last_Call-ID:]", "CSeq: [$invite_cseq]",
            "Contact: <sip:desk@[local_ip]:[local_port]>",
        ]  # fmt: skip
        if sdp:
            lines += [
                "Content-Type: application/sdp", "Content-Length: [len]", "",
                "v=0", "o=desk 1 1 IN IP[local_ip_type] [local_ip]", "s=-",
                "c=IN IP[media_ip_type] [media_ip]", "t=0 0",
                "m=audio [media_port] RTP/AVP 0", "a=rtpmap:0 PCMU/8000",
            ]  # fmt: skip
        else:
            lines.append("Content-Length: 0")
        return "\n".join(lines)

    ok = "\n".join(["SIP/2.0 200 OK", "[last_Via:]", "[last_From:]", "[last_To:]",
                    "[last_Call-ID:]", "[last_CSeq:]", "Content-Length: 0"])  # fmt: skip
    bye = "\n".join(
        [
            "BYE [next_url] SIP/2.0",
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]",
            "From: <sip:desk@[local_ip]:[local_port]>;tag=[pid]Desk[call_number]",
            "To: [$caller_from]", "[routes]", "Call-ID: [call_id]", "CSeq: 1 BYE",
            "Max-Forwards: 70", "Content-Length: 0",
        ]
    )  # fmt: skip
    out = [
        _HEAD,
        '<scenario name="citas desk agent">',
        '<recv request="INVITE" rrs="true"><action>'
        '<ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller_from"/>'
        '<ereg regexp="[0-9]+ INVITE" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/>'
        "</action></recv>",
        f"<send>{_cdata(reply('100 Trying'))}</send>",
        f"<send>{_cdata(reply('180 Ringing'))}</send>",
    ]
    if answer_after_ms > 0:
        # Ringing: a CANCEL within answer_after_ms ends the call unanswered.
        out += [
            f'<recv request="CANCEL" timeout="{answer_after_ms}" ontimeout="answer"/>',
            f"<send>{_cdata(ok)}</send>",
            f"<send>{_cdata(reply('487 Request Terminated'))}</send>",
            '<recv request="ACK" next="end"/>',
            '<label id="answer"/>',
        ]
    out += [
        f'<send retrans="500">{_cdata(reply("200 OK", sdp=True))}</send>',
        '<recv request="ACK"/>',
        f'<recv request="BYE" timeout="{max(talk_ms, 1)}" ontimeout="hangup"/>',
        f'<send next="end">{_cdata(ok)}</send>',
        '<label id="hangup"/>',
        f'<send retrans="500">{_cdata(bye)}</send>',
        '<recv response="200"/>',
        '<label id="end"/>',
        '<ResponseTimeRepartition value="100, 500, 1000"/>',
        "</scenario>\n",
    ]
    return "\n".join(out)
