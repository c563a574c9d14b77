#!/usr/bin/env python3
"""make bench: subproxy and nginx's mail proxy side by side, same client, same upstream, one run.

Both proxies relay to the same sink (loadgen sink: plaintext SMTP with XCLIENT on loopback) and
are driven by the same C++ load generator (loadgen sessions/idle/burst).  Every session: EHLO,
STARTTLS (TLS 1.3, P-256 certificate), EHLO, AUTH PLAIN, MAIL, RCPT, a 2 kB message, QUIT.
The figures and how to read them: README.md, "Benchmark".

Knobs (environment; defaults give a quick run of about two minutes):
  BENCH_FULL=1           the full run: larger counts and longer rate runs (under ten minutes)
  BENCH_SESSIONS=N       sessions of the CPU pass                      (2000; full 6000)
  BENCH_CPU_ROUNDS=N     CPU passes per proxy, taking turns; the median is shown (3)
  BENCH_CONC=N           sessions at once in the CPU pass               (100)
  BENCH_RATE_CONC=N      sessions at once in the sessions/s runs        (600)
  BENCH_STRACE=N         sessions under strace -f -c                    (300; full 1000)
  BENCH_LATENCY=N        sessions one at a time for the latencies       (100; full 400)
  BENCH_RATE_SECONDS=S   length of each sessions/s run                  (8; full 20)
  BENCH_WORKERS=N        the "N workers" of the scaling run             (the number of CPUs)
  BENCH_CAP=P            % of a core each proxy thread/process may use in the rate runs (30)
  BENCH_CAP_PERIOD_MS=T  cpu.cfs_period_us of the caps, in ms            (100)
  BENCH_SHARES=W         cpu.shares of the whole bench during the rate runs (32768; 0: 1024, no
                         priority over other work on the machine)
  BENCH_IDLE=N           authenticated sessions held idle               (2000; full 9000)
  BENCH_IDLE_HOLD=S      seconds they are held                          (5; full 15)
  BENCH_BURST=N          logins opened within one second (subproxy)    (5000; 0: skip)
  BENCH_ONLY=NAME        measure only "subproxy" or "nginx"
"""

import json
import os
import signal
import subprocess
import sys
import time

import targets as t

FULL = os.environ.get("BENCH_FULL") == "1"


def knob(name, quick, full):
    return type(quick)(os.environ.get(name, full if FULL else quick))


SESSIONS = knob("BENCH_SESSIONS", 2000, 6000)
CPU_ROUNDS = max(1, knob("BENCH_CPU_ROUNDS", 3, 3))
CONC = knob("BENCH_CONC", 100, 100)
# Enough sessions at once that the proxy, not the time each session takes, limits the rate:
# subproxy holds every greeting limits.tls_detect_ms (200 ms), so 200 at once could not pass
# 1000 sessions/s however fast it is (Little's law), and two capped loops come near that.
RATE_CONC = knob("BENCH_RATE_CONC", 600, 600)
STRACE = knob("BENCH_STRACE", 300, 1000)
LATENCY = knob("BENCH_LATENCY", 100, 400)
RATE_SECONDS = knob("BENCH_RATE_SECONDS", 8.0, 20.0)
WORKERS = knob("BENCH_WORKERS", os.cpu_count() or 2, os.cpu_count() or 2)
CAP = knob("BENCH_CAP", 30, 30)
SHARES = knob("BENCH_SHARES", 32768, 32768)
CAP_PERIOD = knob("BENCH_CAP_PERIOD_MS", 100, 100)
IDLE = knob("BENCH_IDLE", 2000, 9000)
IDLE_HOLD = knob("BENCH_IDLE_HOLD", 5.0, 15.0)
BURST = knob("BENCH_BURST", 5000, 5000)
ONLY = os.environ.get("BENCH_ONLY", "")
THREADS = 2   # load generator threads: enough for the two cores here


def say(text):
    print(text, flush=True)


def loadgen(mode, port, *args, preexec=None):
    r = subprocess.run([t.LOADGEN, mode, "-p", str(port)] + [str(a) for a in args],
                       capture_output=True, text=True, preexec_fn=preexec)
    if r.returncode != 0:
        raise RuntimeError("loadgen %s failed: %s" % (mode, r.stderr.strip()))
    return json.loads(r.stdout.strip().splitlines()[-1])


def errors_text(result):
    return ", ".join("%s: %d" % kv for kv in result["errors"].items()) or "none"


def cpu_pass(target, sink):
    """CPU per session of the proxy (all its processes and threads) over SESSIONS sessions."""
    pids = target.pids() if target else []
    c0, s0, h0 = t.cpu_seconds(pids), t.cpu_seconds(sink.pids()), t.host_busy()
    r = loadgen("sessions", target.port if target else sink.port, "-c", CONC, "-n", SESSIONS, "-j", THREADS)
    c1, s1, h1 = t.cpu_seconds(pids), t.cpu_seconds(sink.pids()), t.host_busy()
    ok = max(r["ok"], 1)
    return {"cpu_ms": 1000 * (c1 - c0) / ok, "loadgen_ms": 1000 * r["cpu_s"] / ok,
            "sink_ms": 1000 * (s1 - s0) / ok, "rate_uncapped": r["rate"],
            "host_busy": 100.0 * (h1[0] - h0[0]) / max(h1[1] - h0[1], 1), "errors": errors_text(r),
            "failed": r["failed"]}


def strace_pass(target):
    """System calls per session: strace -f -c attached to every process of the proxy."""
    out = os.path.join(target.dir, "strace.txt")
    cmd = ["strace", "-f", "-c", "-o", out]
    for pid in target.pids():
        cmd += ["-p", str(pid)]
    st = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    # strace says "Process N attached" per thread; wait for the first, then let it settle.
    st.stderr.readline()
    time.sleep(0.5)
    r = loadgen("sessions", target.port, "-c", 10, "-n", STRACE, "-j", 1)
    st.send_signal(signal.SIGINT)
    st.wait()
    calls, top = 0, []
    with open(out) as f:
        for line in f:
            fields = line.split()
            if len(fields) < 5 or not fields[0][0].isdigit():
                continue
            if fields[-1] == "total":
                calls = int(fields[3])
            else:
                top.append((int(fields[3]), fields[-1]))
    ok = max(r["ok"], 1)
    top.sort(reverse=True)
    return {"syscalls": calls / ok,
            "top": ", ".join("%s %.1f" % (name, n / ok) for n, name in top[:8])}


def latency_pass(port):
    r = loadgen("sessions", port, "-c", 1, "-n", LATENCY, "-j", 1)
    return {"p50": r["p50_ms"], "p99": r["p99_ms"], "lat_errors": errors_text(r)}


def rate_pass(target, workers, sink):
    """Sessions/s with every proxy thread/process capped to CAP % of a core (targets.CpuCaps).
    The proxy was the limit when its busiest WORKERS threads/processes (the event loops) each
    used nearly all of their cap."""
    caps = t.CpuCaps(target, CAP, SHARES, sink.pids(), CAP_PERIOD) if t.CpuCaps.available() else None
    try:
        pids = target.pids()
        c0, h0 = t.cpu_seconds(pids), t.host_busy()
        u0 = caps.snapshot() if caps else {}
        r = loadgen("sessions", target.port, "-c", RATE_CONC, "-s", RATE_SECONDS, "-j", THREADS,
                    preexec=caps.join if caps else None)
        c1, h1 = t.cpu_seconds(pids), t.host_busy()
        u1 = caps.snapshot() if caps else {}
    finally:
        if caps:
            caps.close()
    wall = r["wall_s"]
    units = []  # (% of a core, % of its periods throttled) per thread/process, busiest first
    for tid, (cpu, periods, throttled) in u1.items():
        c, p, th = u0.get(tid, (0.0, 0, 0))
        units.append((100 * (cpu - c) / wall, 100 * (throttled - th) / max(periods - p, 1)))
    units.sort(reverse=True)
    busiest = units[:workers]
    return {"rate": r["rate"], "proxy_cpu": 100 * (c1 - c0) / wall, "loadgen_cpu": 100 * r["cpu_s"] / wall,
            "host_busy": 100.0 * (h1[0] - h0[0]) / max(h1[1] - h0[1], 1), "capped": caps is not None,
            "units": ", ".join("%.0f%% (throttled in %.0f%% of periods)" % u for u in units[:workers + 1]),
            "proxy_bound": len(busiest) == workers and all(u[0] >= 0.85 * CAP for u in busiest),
            "errors": errors_text(r)}


def idle_pass(target):
    """RSS per authenticated idle session (customer and MSA legs open), IDLE held IDLE_HOLD s."""
    loadgen("sessions", target.port, "-c", 10, "-n", 50, "-j", 1)  # first-use costs not counted
    time.sleep(0.5)
    base = t.rss_kib(target.pids())
    p = subprocess.Popen([t.LOADGEN, "idle", "-p", str(target.port), "-n", str(IDLE), "-c", "100",
                          "-H", str(IDLE_HOLD), "-j", str(THREADS), "--timeout", "120"],
                         stdout=subprocess.PIPE, text=True)
    ready = json.loads(p.stdout.readline())
    time.sleep(min(1.0, IDLE_HOLD / 2))
    held_rss = t.rss_kib(target.pids())
    final = json.loads(p.stdout.read().strip().splitlines()[-1])
    p.wait()
    held = max(ready["held"], 1)
    return {"rss_kib": (held_rss - base) / held, "held": ready["held"],
            "failed": ready["failed"] + final["hold_failures"], "open_s": ready["open_s"],
            "errors": errors_text(final)}


def warm(target):
    loadgen("sessions", target.port, "-c", 10, "-n", 100, "-j", 1)


def cpu_rounds(makers, sink):
    """CPU per session of each proxy (one worker each), CPU_ROUNDS times with the proxies taking
    turns, so that other work on a shared machine (a compile next door) weighs on both alike:
    {name: the median round's cpu_pass() with "cpu_rounds", every round's figure}."""
    rounds = {name: [] for name in makers}
    for n in range(CPU_ROUNDS):
        for name, make in makers.items():
            target = make().start()
            try:
                warm(target)
                say("  %s: CPU pass %d of %d (%d sessions, %d at once)" % (name, n + 1, CPU_ROUNDS, SESSIONS, CONC))
                rounds[name].append(cpu_pass(target, sink))
            finally:
                target.stop()
    out = {}
    for name, results in rounds.items():
        ordered = sorted(results, key=lambda r: r["cpu_ms"])
        out[name] = dict(ordered[len(ordered) // 2], cpu_rounds=[r["cpu_ms"] for r in results])
    return out


def measure(make, workers_ok, tmp, sink, cpu):
    """Every figure of one proxy; make(workers=None|N, upstream_tls=False) builds it.  `cpu`:
    its result of cpu_rounds()."""
    res = dict(cpu)
    target = make(1 if workers_ok else None).start()
    try:
        warm(target)
        say("  %s: strace pass (%d sessions)" % (target.name, STRACE))
        res.update(strace_pass(target))
        say("  %s: latency pass (%d sessions, one at a time)" % (target.name, LATENCY))
        res.update(latency_pass(target.port))
        say("  %s: sessions/s, 1 worker, %d s" % (target.name, RATE_SECONDS))
        res["rate1"] = rate_pass(target, 1, sink)
    finally:
        target.stop()
    if target.name == "subproxy":
        # The default latency includes the 200 ms greeting hold of limits.tls_detect_ms; the
        # proxy's own share is the same pass with it off.
        target = t.Subproxy(tmp, sink, workers=1 if workers_ok else None, tls_detect_ms=0).start()
        try:
            say("  %s: latency pass with limits.tls_detect_ms = 0" % target.name)
            lat = latency_pass(target.port)
            res["p50_nodetect"], res["p99_nodetect"] = lat["p50"], lat["p99"]
        finally:
            target.stop()
    res["rateN"] = None
    if workers_ok:
        target = make(WORKERS).start()
        try:
            warm(target)
            say("  %s: sessions/s, %d workers, %d s" % (target.name, WORKERS, RATE_SECONDS))
            res["rateN"] = rate_pass(target, WORKERS, sink)
        finally:
            target.stop()
    # The MSA leg in plaintext (as nginx's mail proxy keeps it), and for subproxy also in TLS.
    for leg in ("plain", "tls") if target.name == "subproxy" else ("plain",):
        target = make(1 if workers_ok else None, upstream_tls=(leg == "tls")).start()
        try:
            say("  %s: %d idle authenticated sessions for %d s, MSA leg %s" % (target.name, IDLE, IDLE_HOLD, leg))
            res["idle_" + leg] = idle_pass(target)
        finally:
            target.stop()
    return res


def burst_pass(tmp, sink, workers):
    target = t.Subproxy(tmp, sink, workers=workers).start()
    try:
        warm(target)
        return loadgen("burst", target.port, "-n", BURST, "-j", THREADS, "--timeout", "120")
    finally:
        target.stop()


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    return ("%%.%df" % digits) % v


def row(label, a, b, digits=2, ratio=True, marks=("", "")):
    r = fmt(a / b, 2) if ratio and a is not None and b else "n/a"
    say("%-44s %10s %10s %8s" % (label, fmt(a, digits) + marks[0], fmt(b, digits) + marks[1], r if ratio else ""))


def report(sp, ng, direct, burst, workers_note):
    """The table: one row per figure, subproxy, nginx, and their ratio."""
    def get(res, *keys):
        for k in keys:
            if res is None:
                return None
            res = res.get(k) if isinstance(res, dict) else None
        return res

    say("")
    say("%-44s %10s %10s %8s" % ("", "subproxy", "nginx", "ratio"))
    row("CPU per session (ms)                 [lower]", get(sp, "cpu_ms"), get(ng, "cpu_ms"), 3)
    row("  load generator CPU per session (ms)", get(sp, "loadgen_ms"), get(ng, "loadgen_ms"), 3, False)
    row("System calls per session             [lower]", get(sp, "syscalls"), get(ng, "syscalls"), 1)

    def mark(key):  # "*": the proxy was not the limit of that run
        return tuple("*" if get(res, key, "proxy_bound") is False else "" for res in (sp, ng))

    row("Sessions/s, 1 worker, capped        [higher]", get(sp, "rate1", "rate"), get(ng, "rate1", "rate"), 0,
        marks=mark("rate1"))
    row("Sessions/s, %d workers, capped       [higher]" % WORKERS, get(sp, "rateN", "rate"),
        get(ng, "rateN", "rate"), 0, marks=mark("rateN"))
    row("  scaling, N workers / 1 worker     [higher]", ratio_of(sp), ratio_of(ng), 2)
    row("Sessions/s, 1 worker, uncapped       [info]", get(sp, "rate_uncapped"), get(ng, "rate_uncapped"), 0)
    row("RSS per idle session (KiB)           [lower]", get(sp, "idle_plain", "rss_kib"),
        get(ng, "idle_plain", "rss_kib"), 1)
    row("  the same, subproxy's MSA leg in TLS  [lower]", get(sp, "idle_tls", "rss_kib"),
        get(ng, "idle_plain", "rss_kib"), 1)
    row("Latency p50 (ms)                     [lower]", get(sp, "p50"), get(ng, "p50"), 2)
    row("Latency p99 (ms)                     [lower]", get(sp, "p99"), get(ng, "p99"), 2)
    added = lambda res, k: res[k] - direct[k] if res else None  # noqa: E731
    row("Added latency p50 vs direct (ms)     [lower]", added(sp, "p50"), added(ng, "p50"), 2)
    row("Added latency p99 vs direct (ms)     [lower]", added(sp, "p99"), added(ng, "p99"), 2)
    added_nd = lambda res, k: res[k + "_nodetect"] - direct[k] if res else None  # noqa: E731
    row("  the same, tls_detect_ms = 0, p50   [lower]", added_nd(sp, "p50"), added(ng, "p50"), 2)
    row("  the same, tls_detect_ms = 0, p99   [lower]", added_nd(sp, "p99"), added(ng, "p99"), 2)
    if "*" in mark("rate1") + mark("rateN"):
        say("  * not limited by the proxy: the load generator or other load on the host was (details below)")
    report_details(sp, ng, direct, burst, workers_note)


def report_details(sp, ng, direct, burst, workers_note):
    """What is behind the table: per pass, errors, who was the limit, the top system calls."""
    say("")
    say("Direct to the sink (no proxy): latency p50 %.2f ms, p99 %.2f ms; load generator %.3f ms CPU and "
        "sink %.3f ms CPU per session" % (direct["p50"], direct["p99"], direct["loadgen_ms"], direct["sink_ms"]))
    for name, res in (("subproxy", sp), ("nginx", ng)):
        if res is None:
            continue
        say("%s:" % name)
        say("  CPU pass: %d sessions at %.0f/s, host busy %.0f%%, errors: %s; CPU per session in the %d rounds: "
            "%s ms (the median in the table)"
            % (SESSIONS, res["rate_uncapped"], res["host_busy"], res["errors"], len(res["cpu_rounds"]),
               ", ".join("%.3f" % v for v in res["cpu_rounds"])))
        say("  system calls per session: %s" % res["top"])
        for key, label in (("rate1", "1 worker"), ("rateN", "%d workers" % WORKERS)):
            r = res.get(key)
            if r is None:
                say("  %s: n/a (%s)" % (label, workers_note))
                continue
            say("  %s: %.0f sessions/s; proxy CPU %.0f%% of a core in all, its busiest threads/processes: %s "
                "(cap %s); load generator CPU %.0f%%, host busy %.0f%% of %d cores; errors: %s"
                % (label, r["rate"], r["proxy_cpu"], r["units"], ("%d%% each" % CAP) if r["capped"]
                   else "none: no writable cgroup", r["loadgen_cpu"], r["host_busy"], os.cpu_count(), r["errors"]))
            say("    limited by: %s" % ("the proxy (its event loops used their CPU caps)" if r["proxy_bound"] else
                                        "NOT the proxy (below its caps): the load generator or other load "
                                        "on the host; this figure does not measure the proxy"))
        for leg in ("plain", "tls"):
            r = res.get("idle_" + leg)
            if r is not None:
                say("  idle, MSA leg %s: %d held (%d failed), opened in %.1f s; errors: %s"
                    % ("in TLS" if leg == "tls" else "plaintext", r["held"], r["failed"], r["open_s"],
                       r["errors"]))
    if burst is not None:
        say("")
        say("Burst (subproxy, %s): %d logins opened within %.2f s: 235 %d, 454 %d, other %d, connection "
            "errors %d; last answer after %.2f s; errors: %s"
            % (burst["workers"], BURST, burst["last_start_s"], burst["auth_235"], burst["auth_454"],
               burst["auth_other"], burst["conn_errors"], burst["last_answer_s"], errors_text(burst)))


def ratio_of(res):
    if res is None or res.get("rateN") is None:
        return None
    return res["rateN"]["rate"] / res["rate1"]["rate"]


def main():
    tmp = t.make_tmp()
    sink = t.Sink(tmp)
    started = time.monotonic()
    try:
        probe = t.Subproxy(tmp, sink, workers=1)
        workers_ok, out = probe.check()
        workers_note = "subproxy has no 'workers' key yet" if "unknown key" in out else out
        if not workers_ok and "unknown key" not in out:
            raise RuntimeError("subproxy -t: " + out)
        say("bench: %s; %d CPUs; load average %s" % ("full" if FULL else "quick", os.cpu_count(),
                                                     open("/proc/loadavg").read().split()[0]))
        say("  direct: latency and CPU passes against the sink")
        direct = latency_pass(sink.port)
        direct.update(cpu_pass(None, sink))
        sp = ng = burst = None
        make_sp = lambda w, upstream_tls=False: t.Subproxy(tmp, sink, workers=w, upstream_tls=upstream_tls)  # noqa: E731
        make_ng = lambda w, upstream_tls=False: t.Nginx(tmp, sink, workers=w or 1)  # noqa: E731
        makers = {}
        if ONLY in ("", "subproxy"):
            makers["subproxy"] = lambda: make_sp(1 if workers_ok else None)
        if ONLY in ("", "nginx"):
            makers["nginx"] = lambda: make_ng(1)
        cpu = cpu_rounds(makers, sink)
        if ONLY in ("", "subproxy"):
            sp = measure(make_sp, workers_ok, tmp, sink, cpu["subproxy"])
            if BURST > 0:
                say("  subproxy: burst of %d logins" % BURST)
                burst = burst_pass(tmp, sink, WORKERS if workers_ok else None)
                burst["workers"] = ("workers = %d" % WORKERS) if workers_ok else "one event loop"
        if ONLY in ("", "nginx"):
            ng = measure(make_ng, True, tmp, sink, cpu["nginx"])
        report(sp, ng, direct, burst, workers_note)
        say("")
        say("bench: done in %.0f s (README.md, \"Benchmark\", explains the columns)" % (time.monotonic() - started))
    finally:
        sink.stop()
        t.remove_tmp(tmp)


if __name__ == "__main__":
    main()
