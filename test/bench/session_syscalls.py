#!/usr/bin/env python3
"""Benchmark: system calls and CPU per session in subproxy (not part of make check).

The session of issue 10: EHLO, STARTTLS (TLS 1.3), EHLO, AUTH PLAIN (Cyrus sasldb), MAIL, RCPT,
one 2 kB message, QUIT; the MSA leg in plain text with XCLIENT, to a scripted fake MSA on
loopback.  N sessions one after the other; prints the proxy's CPU per session (from
/proc/<pid>/stat, whatever the Python client costs) and, with --strace, attaches `strace -f -c`
to the proxy for a second run of N sessions and prints the system calls per session by call.
    python3 test/bench/session_syscalls.py [N] [--strace]
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness as h  # noqa: E402

BODY = ("x" * 78 + "\r\n") * 25  # with the headers, ~2 kB


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def session(port):
    c = h.login(port)
    code, _ = h.send_message(c, "bench", body=BODY)
    assert code == 250
    c.cmd("QUIT")
    c.close()


def run(port, n):
    for _ in range(n):
        session(port)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 300
    with h.FakeMsa() as fake:
        with h.Proxy(name="bench-syscalls", upstream={"port": fake.port, "tls": "none"}) as p:
            run(p.port, 5)  # first-use costs (OpenSSL, Cyrus, allocator) are not counted
            cpu0, t0 = cpu_seconds(p.proc.pid), time.monotonic()
            run(p.port, n)
            cpu, wall = cpu_seconds(p.proc.pid) - cpu0, time.monotonic() - t0
            print("sessions=%d wall=%.1fs (client-bound) proxy_cpu=%.2fs -> %.3f ms CPU per session"
                  % (n, wall, cpu, 1000 * cpu / n))
            if "--strace" in sys.argv:
                calls = h.strace_counts(p.proc.pid, lambda: run(p.port, n))
                total = sum(calls.values())
                print("system calls per session: %.1f" % (total / n))
                for name, count in sorted(calls.items(), key=lambda kv: -kv[1]):
                    if count / n >= 0.05:
                        print("  %-20s %6.2f" % (name, count / n))


if __name__ == "__main__":
    main()
