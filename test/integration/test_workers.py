"""Several event loops (`workers`, issue 10 item 2): each has its own listening socket on the
same port (SO_REUSEPORT) and its own sessions; what they share must behave as one.  Every test
learns which loop took a connection from subproxy_worker_sessions_total (the counter of the
loop that accepted it goes up by one), so it can put work on both loops on purpose rather than
hope the kernel's hash does:
- both loops serve, and their threads are there (top -H shows them by name);
- AUTH failures on either loop count toward one ban (per loop, twice as many would pass);
- limits.max_sessions is one limit for the process, not one per loop;
- SIGHUP reaches both loops; SIGTERM drains sessions on both and then exits;
- a second process cannot quietly share the port."""
import os
import signal
import socket
import subprocess
import time
import unittest
import urllib.request

import harness as h


def proxy(name, workers=2, **kw):
    p = h.Proxy(name=name, **kw)
    p.config["workers"] = workers
    p.config["status"] = {"address": "127.0.0.1", "port": h.free_port()}
    return p


def worker_sessions(p):
    """[sessions accepted by loop 0, by loop 1, ...] from /metrics."""
    url = "http://127.0.0.1:%d/metrics" % p.config["status"]["port"]
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("subproxy_worker_sessions_total{"):
            worker = int(line.split('worker="')[1].split('"')[0])
            found[worker] = int(float(line.rsplit(" ", 1)[1]))
    return [found[i] for i in sorted(found)]


def connect_on(p, worker, attempts=200):
    """A greeted RawClient whose connection loop `worker` accepted (others are closed)."""
    for _ in range(attempts):
        before = worker_sessions(p)
        c = h.RawClient(p.port)
        code, lines = c.reply()
        assert code == 220, (code, lines)
        after = worker_sessions(p)
        took = [i for i in range(len(after)) if after[i] > before[i]]
        if took == [worker]:
            return c
        c.cmd("QUIT")
        c.close()
    raise AssertionError("no connection landed on worker %d in %d attempts" % (worker, attempts))


def tls_ready(c):
    c.cmd("EHLO customer.example")
    c.starttls()
    c.cmd("EHLO customer.example")
    return c


class Workers(unittest.TestCase):
    def test_both_loops_serve_and_are_named(self):
        with proxy("workers-serve") as p:
            for worker in (0, 1):
                c = tls_ready(connect_on(p, worker))
                code, _ = h.auth(c, "PLAIN", "alice", h.USERS["alice"])
                self.assertEqual(code, 235)
                self.assertEqual(h.send_message(c, "via worker %d" % worker)[0], 250)
                c.cmd("QUIT")
                c.close()
            names = []
            for task in os.listdir("/proc/%d/task" % p.proc.pid):
                with open("/proc/%d/task/%s/comm" % (p.proc.pid, task)) as f:
                    names.append(f.read().strip())
            self.assertEqual(sorted(n for n in names if n.startswith("subproxy-w")), ["subproxy-w0", "subproxy-w1"])
            self.assertIn("with 2 workers", p.log_text())

    def test_auth_failures_on_both_loops_make_one_ban(self):
        # Threshold 4: two failures on each loop.  Counted per loop, nobody would be banned.
        guard = {"auth_delay": 0, "ban_threshold": 4, "failure_window": 600, "ban_time": 600,
                 "max_sessions_per_client": 0}
        with proxy("workers-ban", extra={"guard": guard}, limits={"max_auth_failures": 20}) as p:
            for worker in (0, 1, 0, 1):
                c = tls_ready(connect_on(p, worker))
                code, _ = h.auth(c, "PLAIN", "alice", "wrong password")
                self.assertEqual(code, 535)
                c.close()
            c = h.RawClient(p.port)
            code, lines = c.reply()
            self.assertEqual(code, 421, lines)
            self.assertIn("too many failed authentications", " ".join(lines))

    def test_max_sessions_is_one_limit_for_the_process(self):
        with proxy("workers-max", limits={"max_sessions": 4}) as p:
            held = []
            for worker in (0, 0, 1, 1):
                c = tls_ready(connect_on(p, worker))
                self.assertEqual(h.auth(c, "PLAIN", "alice", h.USERS["alice"])[0], 235)
                held.append(c)  # authenticated: never shed
            for _ in range(4):  # whichever loop takes it, the process is full
                c = h.RawClient(p.port)
                code, lines = c.reply()
                self.assertEqual(code, 421, lines)
                c.close()
            held.pop().close()
            deadline = time.time() + 5
            while True:
                c = h.RawClient(p.port)
                code, _ = c.reply()
                c.close()
                if code == 220 or time.time() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(code, 220)
            for c in held:
                c.close()

    def test_reload_reaches_both_loops(self):
        with proxy("workers-reload") as p:
            p.config["hostname"] = "reloaded.test"
            p.write_config()
            p.proc.send_signal(signal.SIGHUP)
            p.wait_log("reload done")
            for worker in (0, 1):
                c = connect_on(p, worker)
                code, lines = c.cmd("EHLO customer.example")
                self.assertEqual(code, 250)
                self.assertTrue(lines[0].startswith("reloaded.test"), lines)
                c.close()

    def test_sigterm_drains_sessions_on_both_loops(self):
        with proxy("workers-drain", limits={"shutdown_grace": 20}) as p:
            sessions = []
            for worker in (0, 1):
                c = tls_ready(connect_on(p, worker))
                self.assertEqual(h.auth(c, "PLAIN", "alice", h.USERS["alice"])[0], 235)
                sessions.append(c)
            p.proc.send_signal(signal.SIGTERM)
            p.wait_log("shutting down")
            for i, c in enumerate(sessions):
                self.assertEqual(h.send_message(c, "drain %d" % i)[0], 250)
                c.cmd("QUIT")
                c.close()
            self.assertEqual(p.proc.wait(10), 0)
            self.assertIn("subproxy stopped", p.log_text())

    def test_second_process_cannot_share_the_port(self):
        with proxy("workers-first") as p:
            other = proxy("workers-second", port=p.port)
            other.write_config()
            r = subprocess.run([h.SUBPROXY, "-f", "-c", other.conf_file], capture_output=True, text=True, timeout=20)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("Address already in use", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
