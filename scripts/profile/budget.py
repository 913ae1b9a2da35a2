"""The controller's event-loop samples charged to call steps (docs/perf/budget.md).

usage: budget.py COLLAPSED CPU_MS_PER_CALL MAIN_SHARE
Each main-thread sample (steady state) goes to the first category whose frame
pattern is on its stack (CATEGORIES order: a request inside a citas action is a
request). ms per call = share of main-thread samples x MAIN_SHARE x CPU_MS_PER_CALL
(MAIN_SHARE: the event-loop thread's part of the process CPU, from /proc).
"""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ivr.bench.profile import merged, by_process, read_collapsed  # noqa: E402

CATEGORIES = [
    ("REST answer", r"^AriClient\.answer "),
    ("REST play", r"^AriClient\.play "),
    ("REST stop playback (DELETE /playbacks)", r"^AriClient\.stop_playback "),
    ("REST set variable", r"^AriClient\.set_variable "),
    ("REST hangup (DELETE /channels)", r"^AriClient\.hangup "),
    ("REST continue (transfer)", r"^AriClient\.continue_in_dialplan "),
    ("REST other", r"^AriClient\._request "),
    ("citas: caller-ID lookup", r"^CitasActions\.(lookup|identify|find_affiliate|caller)"),
    ("citas: eligibility", r"^CitasActions\.evaluate_eligibility "),
    ("citas: slot search", r"^CitasActions\.find_slot "),
    ("citas: WhatsApp SMS (outbox)", r"^CitasActions\.send_whatsapp_sms "),
    ("citas: other actions", r"^CitasActions\."),
    ("flags read (per call)", r"^(LiveFlags\.value|FlowEngine\._flag)"),
    ("call record open", r"^(Controller\._open_record|CallRecordStore\.open) "),
    ("call record close", r"^(Controller\._close_record|CallRecordStore\.close) "),
    ("call record writer (buffered writes)", r"^CallRecordStore\.(run|flush) "),
    ("ARI events in (websocket read, json, parse, route)", r"^EventStream\._connection "),
    ("AMI events in (panoramisk)", r"panoramisk/"),
    ("flow + voice logic (the call's task, rest)", r"^Controller\.handle_call "),
    ("router (task per call, cleanup)", r"^CallRouter\."),
    ("pollers: flags revision", r"^LiveFlags\.run "),
    ("pollers: chat outbox", r"^ChatRunner\.run "),
    ("pollers: SMS worker/outbox", r"^(SmsWorker|SmsOutbox)\."),
    ("pollers: others (answers, surveys, mail, text, SLA)", r"^(AnswerDelivery|SurveyWorker|MailWorker|TextAnalysisWorker|SlaMonitor)\.run "),
    ("DB thread hand-back (aiosqlite set_result)", r"^set_result \(aiosqlite"),
    ("DB commit + close (SQLAlchemy runs them in a shielded task)", r"^(_AsyncSessionContextManager|AsyncSession\.close)"),
    ("event loop: self-pipe wakeups", r"^BaseSelectorEventLoop\._read_from_self "),
    ("event loop: socket reads (HTTP responses)", r"^_SelectorSocketTransport\._read_ready"),
]
COMPILED = [(n, re.compile(p)) for n, p in CATEGORIES]
UVLOOP = "event loop: uvloop's C code (I/O, callbacks; may include waiting)"


def main() -> None:
    path, cpu_ms, main_share = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    stacks = read_collapsed(Path(path))
    stacks = merged(by_process(stacks))  # a --subprocesses recording: every process
    main = {s: c for s, c in stacks.items() if s[0].startswith("_run_module_as_main")
            and not any(f.startswith("serve (ivr/controller.py") for f in s)
            and any(f.startswith("Runner.run ") for f in s)}  # asyncio or uvloop
    total = sum(main.values())
    out: dict[str, int] = {}
    for stack, count in main.items():
        if stack[-1].startswith("Runner.run "):  # uvloop: its C loop has no Python frame
            out[UVLOOP] = out.get(UVLOOP, 0) + count
            continue
        for name, pat in COMPILED:
            if any(pat.search(f) for f in stack):
                out[name] = out.get(name, 0) + count
                break
        else:
            out["event loop: other"] = out.get("event loop: other", 0) + count
    per_call_main = cpu_ms * main_share
    print(f"main-thread samples {total}; {cpu_ms} ms/call x {main_share} = {per_call_main:.1f} ms on the loop")
    for name, _ in [*CATEGORIES, ("event loop: other", ""), (UVLOOP, "")]:
        n = out.get(name, 0)
        if n:
            print(f"| {name} | {100 * n / total:.1f} % | {per_call_main * n / total:.2f} |")


if __name__ == "__main__":
    main()
