#!/usr/bin/env python3
"""Benchmark: memory of idle sessions in subproxy (not part of make check).

Opens N customer sessions in each state (greeted; authenticated with the MSA session open, both
sides TLS) against a scripted fake MSA on loopback, and prints the proxy's RSS growth per session.
    python3 test/bench/idle_memory.py [N]
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness as h  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with h.FakeMsa() as fake:
        p = h.Proxy(name="bench", upstream={"port": fake.port}, limits={"max_sessions": 10 * n})
        with p:
            # Warm up allocator, OpenSSL and SASL once so the first-use costs are not counted.
            h.login(p.port).close()
            time.sleep(0.5)
            base = rss_kib(p.proc.pid)
            greeted = []
            for _ in range(n):
                c = h.RawClient(p.port)
                c.reply()
                greeted.append(c)
            time.sleep(0.5)
            after_greet = rss_kib(p.proc.pid)
            for c in greeted:
                c.close()
            time.sleep(1.0)
            base2 = rss_kib(p.proc.pid)
            authed = [h.login(p.port) for _ in range(n)]
            time.sleep(1.0)
            after_auth = rss_kib(p.proc.pid)
            print("sessions=%d" % n)
            print("greeted idle: %.1f KiB/session (RSS %d -> %d KiB)"
                  % ((after_greet - base) / n, base, after_greet))
            print("authenticated idle, MSA session open, TLS both sides: %.1f KiB/session (RSS %d -> %d KiB)"
                  % ((after_auth - base2) / n, base2, after_auth))
            for c in authed:
                c.close()


if __name__ == "__main__":
    main()
