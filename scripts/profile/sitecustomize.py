# Profiling probe (part "profile", issue 13): only in `ivr serve`; counts ARI events by
# type, REST requests by method+template, SQL statements by verb/table; dumps JSON every 1 s.
import sys, os
if "serve" in sys.argv and os.environ.get("PROBE_OUT"):
    import threading, json, time, collections, re
    OUT = os.environ["PROBE_OUT"]
    ev = collections.Counter(); rq = collections.Counter(); sql = collections.Counter()
    sqlfull = collections.Counter(); ami = collections.Counter()
    state = {"patched": False}
    pb_owner = {}
    import contextvars
    current_call = contextvars.ContextVar("current_call", default=None)
    traces = {}
    def trace(ch, what):
        if not ch:
            return
        if ch not in traces:
            if len(traces) >= 6:
                return
            traces[ch] = []
        traces[ch].append("%.3f %s" % (time.monotonic(), what))
    def patch():
        from ivr.ari import client as c, stream as s
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        orig_req = c.AriClient._request
        async def _request(self, method, path, **kw):
            rq[method + " " + path] += 1
            pp = kw.get("path_params") or {}
            ch = pp.get("channelId") or pb_owner.get(pp.get("playbackId"))
            if ch and "playbackId" in pp:
                pb_owner[pp["playbackId"]] = ch
            trace(ch, "-> " + method + " " + path + " " + ",".join(sorted((kw.get("params") or {}))))
            return await orig_req(self, method, path, **kw)
        c.AriClient._request = _request
        orig_parse = s.parse_event
        def parse_event(data):
            ev[data.get("type", "?")] += 1
            ch = (data.get("channel") or {}).get("id")
            if ch is None and isinstance(data.get("playback"), dict):
                ch = data["playback"].get("target_uri", "").partition(":")[2]
            extra = data.get("variable", "") or (data.get("playback") or {}).get("media_uri", "") or data.get("digit", "")
            trace(ch, "<- " + str(data.get("type")) + " " + str(extra))
            if data.get("type") == "ChannelVarset":
                ev["ChannelVarset:" + str(data.get("variable"))] += 1
            return orig_parse(data)
        s.parse_event = parse_event
        def before(conn, cursor, statement, params, context, executemany):
            st = " ".join(statement.split())
            head = st.split(" ")[0].upper()
            m = re.search(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", st, re.I)
            sql[head + " " + (m.group(1) if m else "-")] += 1
            sqlfull[st[:160]] += 1
            ch = current_call.get()
            if ch:
                trace(ch, "SQL " + head + " " + (m.group(1) if m else "-"))
        event.listen(Engine, "before_cursor_execute", before)
        from ivr import controller as ctl
        orig_handle = ctl.Controller.handle_call
        async def handle_call(self, ctx):
            current_call.set(ctx.channel_id)
            return await orig_handle(self, ctx)
        ctl.Controller.handle_call = handle_call
        from panoramisk import manager as pm
        orig_dispatch = pm.Manager.dispatch
        def dispatch(self, ev_):
            ami["AMI " + str(getattr(ev_, "event", "?"))] += 1
            return orig_dispatch(self, ev_)
        pm.Manager.dispatch = dispatch
        state["patched"] = True
    def dumper():
        while True:
            if not state["patched"] and "ivr.controller" in sys.modules:
                try:
                    patch()
                except Exception as e:
                    open(OUT + ".err", "a").write(repr(e) + "\n")
                    state["patched"] = True
            if state["patched"]:
                try:
                    snap = {"t": time.time(), "events": dict(ev), "requests": dict(rq),
                            "sql": dict(sql), "sql_statements": dict(sqlfull), "ami": dict(ami),
                            "traces": {k: list(v) for k, v in list(traces.items())}}
                except RuntimeError:  # changed while copying: next round
                    time.sleep(0.01)
                    continue
                tmp = OUT + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(snap, f, indent=1)
                os.replace(tmp, OUT)
            time.sleep(0.05 if not state["patched"] else 1.0)
    threading.Thread(target=dumper, daemon=True).start()
