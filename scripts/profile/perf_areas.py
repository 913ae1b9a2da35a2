"""Asterisk's CPU by purpose from `perf script` output (perf record --call-graph dwarf).

usage: perf script -i X.perf.data [--pid PID] | python3 perf_areas.py
Each sample is charged to the first purpose (in PURPOSES order) that any frame
of its call chain matches: a playback's samples say ast_control_streamfile
somewhere up the stack, a REST request's say ast_ari_invoke/ast_http, an AMI
event's say manager, and so on. "json" is counted on its own as well (any
sample with a JSON frame, whatever its purpose).
"""
import re
import sys
from collections import Counter

PURPOSES = [
    ("AMI (manager events to the controller's AMI session)", r"manager_|__ast_manager_event|ast_manager|astman_"),
    ("ARI REST in (HTTP server + handlers)", r"ast_ari_invoke|ast_http_|httpd_helper_thread|handle_uri|ast_ari_callback|res_http|ast_ari_channels|ast_ari_playbacks|ast_iostream_gets|ast_wait_for_input"),
    ("playback (file read, translate, RTP write)", r"ast_control_streamfile|playback_|ast_waitstream|ast_playstream|ast_readframe|ast_streamfile|filestream|res_stasis_playback"),
    ("channel in Stasis (control loop, frames, DTMF)", r"stasis_app_exec|app_stasis|control_dispatch|stasis_app_control"),
    # res_stasis.so's own (static, unnamed) frames outside a channel's thread: the
    # application's taskprocessor turning stasis messages into JSON events and
    # writing them to the websocket.
    ("ARI events out (app messages to JSON to websocket)", r"ast_websocket|websocket_|ari_websocket|stasis_app_message_handler|app_send|res_stasis\.so|res_ari\.so"),
    ("SIP (pjsip)", r"pjsip|pj_|res_pjsip|chan_pjsip|pjmedia"),
    ("RTP (res_rtp_asterisk)", r"rtp|res_rtp_asterisk"),
    ("stasis message bus (topics, snapshots, other taskprocessors)", r"stasis_|taskprocessor|threadpool|ast_channel_snapshot|ast_json"),
    ("dialplan / channel core", r"pbx_|ast_pbx|ast_channel|__ast_answer|ast_hangup"),
]
COMPILED = [(name, re.compile(pat)) for name, pat in PURPOSES]
JSON = re.compile(r"json|jansson")


def samples(lines):
    head, chain = None, []
    for line in lines:
        if not line.strip():
            if chain:
                yield head, chain
            head, chain = None, []
        elif line[0] in " \t":
            parts = line.split(None, 1)
            if len(parts) == 2:
                chain.append(parts[1].strip())
        else:
            head = line.split()[0]
    if chain:
        yield head, chain


def main():
    areas = Counter()
    leaves = Counter()
    comms = Counter()
    json_n = 0
    total = 0
    for comm, chain in samples(sys.stdin):
        total += 1
        comms[comm] += 1
        leaves[chain[0].split("+")[0] + " " + chain[0].rsplit("/", 1)[-1]] += 1
        if any(JSON.search(f) for f in chain):
            json_n += 1
        for name, pat in COMPILED:
            if any(pat.search(f) for f in chain):
                areas[name] += 1
                break
        else:
            areas["other (unresolved or unmatched)"] += 1
    print(f"samples {total}")
    for name, n in areas.most_common():
        print(f"{100 * n / total:5.1f} %  {name}")
    print(f"\n{100 * json_n / total:5.1f} %  any JSON frame (jansson, ast_json), across purposes")
    print("\nby thread name:", ", ".join(f"{c} {100 * n / total:.0f} %" for c, n in comms.most_common(5)))
    print("\ntop leaf functions:")
    for leaf, n in leaves.most_common(20):
        print(f"{100 * n / total:5.1f} %  {leaf}")


if __name__ == "__main__":
    main()
