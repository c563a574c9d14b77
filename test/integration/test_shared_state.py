"""Several gateways sharing their state through a real Redis (issue 11): two subproxy instances
and one redis-server (started here on a unix socket in a temp dir, stopped by its PID), logged
in as the ACL user subproxy(8) tells the operator to create, with exactly the commands it lists.

A guesser spread over both gateways is banned on both; -b on one lists the ban and -u on the
other lifts it everywhere; the migration report from either gateway lists what went through
both; with Redis stopped, mail keeps flowing, the outage is logged once and counted, and what
happened meanwhile reaches Redis when it is back.  `subproxy -t` pings Redis."""
import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import harness as h
from test_guard import client_from, refused_reply, subproxy_cli, timed_auth, tls_session

PASSWORD = "fleet-secret-0123456789"
FAST = {"auth_delay": 0.05, "auth_delay_max": 0.1, "ban_threshold": 5, "failure_window": 600,
        "ban_time": 600, "max_sessions_per_client": 0}


def acl_setuser_line():
    """The `ACL SETUSER` line of subproxy(8), roff escapes undone, the password filled in."""
    with open(os.path.join(h.REPO, "man", "subproxy.8")) as f:
        text = f.read()
    m = re.search(r"^ACL SETUSER .*$", text, re.M)
    assert m, "subproxy(8) has no ACL SETUSER line"
    line = m.group(0).replace("\\-", "-").replace("\\(ti", "~").replace("\\e", "\\")
    assert ">CHANGE-ME" in line, line
    return line.replace(">CHANGE-ME", ">" + PASSWORD)


class Redis:
    """redis-server on a unix socket in its own directory, with an append-only file so that a
    restart keeps its data (as subproxy(8) recommends)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="redis.", dir=h.workdir())
        self.socket = os.path.join(self.dir, "redis.sock")
        with open(os.path.join(self.dir, "redis.conf"), "w") as f:
            f.write("port 0\nunixsocket %s\nunixsocketperm 700\ndir %s\nappendonly yes\nsave \"\"\n"
                    "daemonize no\nlogfile %s\n" % (self.socket, self.dir, os.path.join(self.dir, "redis.log")))
            # subproxy(8)'s ACL SETUSER line as a configuration directive (same syntax): the
            # user survives the restart in test_4.
            f.write("user " + " ".join(acl_setuser_line().split()[2:]) + "\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["redis-server", os.path.join(self.dir, "redis.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.cli("PING", check=False).strip() == "PONG":
                return self
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)   # by its PID, never by name
            self.proc.wait(10)

    def cli(self, *args, check=True):
        r = subprocess.run(["redis-cli", "-s", self.socket] + list(args), capture_output=True, text=True,
                           timeout=10)
        if check and r.returncode != 0:
            raise RuntimeError(r.stderr)
        return r.stdout


def gateway(name, redis):
    p = h.Proxy(name=name, limits={"max_auth_failures": 20})
    p.status_port = h.free_port()
    p.config["guard"] = dict(FAST, state_file=os.path.join(p.dir, "guard.state"),
                             control_socket=os.path.join(p.dir, "control.sock"))
    p.config["status"] = {"port": p.status_port}
    p.config["state"] = {"backend": "redis", "address": redis.socket, "username": "subproxy",
                         "password": PASSWORD, "command_timeout": 300,
                         "connect_timeout": 300}
    return p


def metrics(p):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % p.status_port, timeout=5) as r:
        text = r.read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"(?m)^(subproxy_state_backend_\w+) (\S+)$", text)}


def fail_auth(source, port, times):
    c = tls_session(source, port)
    for i in range(times):
        code, _, _ = timed_auth(c, "alice", "wrong-%d" % i)
        assert code == 535, code
    c.close()


def submit(port, user, source="127.0.0.1"):
    c = tls_session(source, port)
    code, _ = h.auth(c, "PLAIN", user, h.USERS[user])
    assert code == 235, code
    code, lines = h.send_message(c, "fleet %s" % user, sender=user + "@example.com")
    assert code == 250, (code, lines)
    c.cmd("QUIT")
    c.close()


def cli_without_daemon(p):
    """subproxy's command line on `p`'s configuration without its control socket to ask (the
    same gateway with no daemon running): -b/-u/-a/-A go to Redis themselves."""
    conf = os.path.join(p.dir, "no-daemon.conf")
    with open(p.conf_file) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(re.sub(r'control_socket = "[^"]*"; ', "", text))
    return lambda *args: subprocess.run([h.SUBPROXY, "-c", conf] + list(args), capture_output=True, text=True,
                                        timeout=20)


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def banned(source, port):
    code, text, _ = refused_reply(source, port)
    return code == 421 and "too many failed authentications" in text


class TwoGateways(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis().start()
        cls.a = gateway("fleet-a", cls.redis).start()
        cls.b = gateway("fleet-b", cls.redis).start()
        for p in (cls.a, cls.b):
            assert p.wait_log("connected to Redis at"), p.log_text()

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        cls.b.stop()
        cls.redis.stop()

    def test_1_guesser_spread_over_both_is_banned_on_both_then_lifted_everywhere(self):
        a, b = self.a, self.b
        self.assertFalse(banned("127.0.0.2", a.port))
        fail_auth("127.0.0.2", a.port, 3)
        fail_auth("127.0.0.2", b.port, 3)   # 6 in all, 3 on each: neither alone reaches 5
        self.assertTrue(wait_for(lambda: banned("127.0.0.2", b.port), 2), b.log_text())
        self.assertTrue(wait_for(lambda: banned("127.0.0.2", a.port), 2), a.log_text())
        self.assertTrue(banned("127.0.0.2", a.port))
        self.assertFalse(banned("127.0.0.4", a.port))   # only the guesser
        self.assertIn("127.0.0.2", self.redis.cli("ZRANGE", "subproxy:bans", "0", "-1"))

        # -b on A lists the fleet's ban; -u on B lifts it on A too.
        r = subproxy_cli(a, "-b")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^127\.0\.0\.2 until=.* failures=\d+$")
        r = subproxy_cli(b, "-u", "127.0.0.2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("lifted 127.0.0.2 on every gateway", r.stdout)
        self.assertTrue(wait_for(lambda: not banned("127.0.0.2", a.port), 2), a.log_text())
        self.assertFalse(banned("127.0.0.2", b.port))
        self.assertEqual(subproxy_cli(a, "-b").stdout, "")
        r = subproxy_cli(a, "-u", "127.0.0.2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not banned", r.stdout + r.stderr)

    def test_2_without_a_daemon_b_and_u_go_to_redis(self):
        self.redis.cli("EVAL", "redis.call('ZADD', KEYS[1], ARGV[1], '127.0.0.9') return 1", "1", "subproxy:bans",
                       str(int(time.time()) + 300))
        run = cli_without_daemon(self.a)
        r = run("-b")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^127\.0\.0\.9 until=")
        r = run("-u", "127.0.0.9")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("lifted 127.0.0.9 on every gateway", r.stdout)
        self.assertEqual(run("-b").stdout, "")

    def test_3_report_from_either_gateway_lists_both(self):
        submit(self.a.port, "alice")
        submit(self.b.port, "alice")
        submit(self.b.port, "bob", source="127.0.0.5")
        for p in (self.a, self.b):
            r = subprocess.run([h.SUBPROXY, "-r", "--csv", "-c", p.conf_file], capture_output=True, text=True,
                               timeout=20)
            self.assertEqual(r.returncode, 0, r.stderr)
            got = {(row["user"], row["address"], int(row["port"])): int(row["count"])
                   for row in csv.DictReader(io.StringIO(r.stdout))}
            self.assertEqual(got.get(("alice", "127.0.0.1", self.a.port)), 1, got)
            self.assertEqual(got.get(("alice", "127.0.0.1", self.b.port)), 1, got)
            self.assertEqual(got.get(("bob", "127.0.0.5", self.b.port)), 1, got)
            r = subprocess.run([h.SUBPROXY, "-r", "--history", "--csv", "--port", str(self.b.port), "-c",
                                p.conf_file], capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 0, r.stderr)
            today = time.strftime("%Y-%m-%d", time.gmtime())
            self.assertIn("%s,%d,2,2\n" % (today, self.b.port), r.stdout)   # alice and bob, one each

    def test_4_redis_down_mail_flows_then_reconciled(self):
        a = self.a
        self.assertEqual(metrics(a)["subproxy_state_backend_up"], 1)
        errors_before = metrics(a)["subproxy_state_backend_errors_total"]
        self.redis.stop()
        try:
            started = time.monotonic()
            before = len(h.msa().messages())
            submit(a.port, "bob", source="127.0.0.6")           # the session never waits on Redis
            fail_auth("127.0.0.7", a.port, 2)
            h.delivered_since(before, 1)
            self.assertLess(time.monotonic() - started, 10)
            self.assertTrue(a.wait_log("unreachable"), a.log_text())
            m = metrics(a)
            self.assertEqual(m["subproxy_state_backend_up"], 0)
            self.assertGreater(m["subproxy_state_backend_errors_total"], errors_before)
            self.assertGreaterEqual(m["subproxy_state_backend_queued_updates"], 3)   # 2 failures + 1 record
            time.sleep(2.5)   # several reconnection attempts: still one line per connection
            self.assertEqual(a.log_text().count("Redis at %s unreachable" % self.redis.socket), 1, a.log_text())
        finally:
            self.redis.start()
        self.assertTrue(a.wait_log("is back after"), a.log_text())
        self.assertTrue(wait_for(lambda: metrics(a)["subproxy_state_backend_up"] == 1, 5))
        self.assertEqual(metrics(a)["subproxy_state_backend_queued_updates"], 0)
        self.assertEqual(self.redis.cli("GET", "subproxy:fail:addr:127.0.0.7").strip(), "2")
        r = subprocess.run([h.SUBPROXY, "-r", "--csv", "-c", self.b.conf_file], capture_output=True, text=True,
                           timeout=20)
        self.assertIn("bob,127.0.0.6,%d,1," % a.port, r.stdout)

    def test_5b_nothing_was_refused_by_the_acl(self):
        # Every command the scripts and the gateways used is in subproxy(8)'s ACL line.
        for p in (self.a, self.b):
            self.assertNotRegex(p.log_text(), r"state: Redis.* refused", p.log_text())

    def test_6_a_pregreet_pass_on_one_gateway_holds_on_the_other(self):
        c, d = (gateway(name, self.redis) for name in ("fleet-c", "fleet-d"))
        for p in (c, d):
            p.config["trap"] = {"greet_wait": 1}
        with c, d:
            self.assertTrue(c.wait_log("connected to Redis subscription") and d.wait_log("connected to Redis sub"))
            started = time.monotonic()
            client = h.RawClient(c.port)
            self.assertEqual(client.reply(), (220, ["proxy.test ESMTP", "proxy.test ESMTP"]))   # waited
            self.assertGreaterEqual(time.monotonic() - started, 0.9)
            client.cmd("QUIT")
            client.close()
            time.sleep(0.3)   # the pass travels through Redis
            started = time.monotonic()
            client = h.RawClient(d.port)
            self.assertEqual(client.reply(), (220, ["proxy.test ESMTP"]))   # greeted at once
            self.assertLess(time.monotonic() - started, 0.5)
            client.close()

    def test_5_check_pings_redis(self):
        r = subprocess.run([h.SUBPROXY, "-t", "-c", self.a.conf_file], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("answers PING (ACL user subproxy)", r.stdout)
        bad = os.path.join(self.a.dir, "bad-password.conf")
        with open(self.a.conf_file) as f:
            text = f.read()
        with open(bad, "w") as f:
            f.write(text.replace(PASSWORD, "wrong-password-000"))
        r = subprocess.run([h.SUBPROXY, "-t", "-c", bad], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("refused the login", r.stderr)


if __name__ == "__main__":
    unittest.main()
