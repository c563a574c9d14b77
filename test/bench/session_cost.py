#!/usr/bin/env python3
"""Benchmark: proxy CPU per full session (not part of make check).

N sequential sessions: TLS, EHLO, AUTH PLAIN (Cyrus sasldb), MAIL, RCPT, 1 KiB DATA, QUIT,
relayed over TLS to a scripted fake MSA on loopback.  Prints the proxy's own CPU time per
session (from /proc/<pid>/stat), which does not depend on how fast the Python client is.
    python3 test/bench/session_cost.py [N]
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness as h  # noqa: E402


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    body = ("Subject: bench\r\n\r\n" + ("x" * 78 + "\r\n") * 13).encode()
    with h.FakeMsa() as fake:
        with h.Proxy(name="bench-cost", upstream={"port": fake.port}) as p:
            h.login(p.port).close()
            cpu0, t0 = cpu_seconds(p.proc.pid), time.monotonic()
            for _ in range(n):
                c = h.login(p.port)
                c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
                c.send(body + b".\r\n")
                assert c.reply()[0] == 250
                c.cmd("QUIT")
                c.close()
            cpu, wall = cpu_seconds(p.proc.pid) - cpu0, time.monotonic() - t0
            print("sessions=%d wall=%.1fs (%.0f/s, client-bound) proxy_cpu=%.2fs -> %.2f ms CPU per session"
                  % (n, wall, n / wall, cpu, 1000 * cpu / n))


if __name__ == "__main__":
    main()
