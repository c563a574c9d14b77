"""Deployment (issue 4): privilege drop, pidfile, background start, status endpoint
(Prometheus metrics checked with prometheus_client's parser), migration report (-r, restart,
notice lines)."""
import json
import os
import pwd
import grp
import re
import signal
import subprocess
import time
import unittest
import urllib.request
import uuid

import harness as h

NOBODY = pwd.getpwnam("nobody")
NOGROUP = grp.getgrnam("nogroup")


def run(*args):
    return subprocess.run([h.SUBPROXY, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=30)


send_message = h.send_message


def unprivileged_sasl(proxy):
    """Make the proxy's own sasldb (and its directory) readable by nobody only through its group."""
    d = os.path.join(proxy.dir, "sasl")
    for path in (d, os.path.join(d, "sasldb2"), os.path.join(d, "subproxy.conf")):
        os.chown(path, 0, NOGROUP.gr_gid)
        os.chmod(path, 0o750 if os.path.isdir(path) else 0o640)


def credentials(pid):
    """{'Uid': [...], 'Gid': [...], 'Groups': [...]} of every thread of `pid`."""
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        fields = {}
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("Uid", "Gid", "Groups"):
                    fields[key] = value.split()
        out.append(fields)
    return out


TOKEN = "status-token-0123456789abcdef"


def http_get(port, path, token=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


PARSE = r"""
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        key = s.name + "".join("{%s=%s}" % kv for kv in sorted(s.labels.items()))
        out[key] = [family.type, s.value]
print(json.dumps(out))
"""


def parse_prometheus(text):
    """Samples by 'name{label=value}' -> [type, value], parsed by prometheus_client (the Debian
    package python3-prometheus-client, for the system python)."""
    r = subprocess.run(["/usr/bin/python3", "-c", PARSE], input=text, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError("prometheus_client could not parse /metrics:\n" + r.stderr + "\n" + text)
    return json.loads(r.stdout)


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class Privileges(unittest.TestCase):
    def test_root_start_drops_to_nobody_and_still_serves(self):
        p = h.Proxy(name="drop", extra={"user": "nobody", "group": "nogroup"})
        piddir = os.path.join(p.dir, "run")
        os.mkdir(piddir)
        os.chown(piddir, NOBODY.pw_uid, NOGROUP.gr_gid)
        pidfile = os.path.join(piddir, "subproxy.pid")
        p.config["pid_file"] = pidfile
        unprivileged_sasl(p)
        with p:
            self.assertTrue(p.wait_log("running as user nobody"))
            for task in credentials(p.proc.pid):
                self.assertEqual(task["Uid"], [str(NOBODY.pw_uid)] * 4, task)
                self.assertEqual(task["Gid"], [str(NOGROUP.gr_gid)] * 4, task)
                self.assertNotIn("0", task["Groups"], task)
            with open(pidfile) as f:
                self.assertEqual(int(f.read()), p.proc.pid)
            before = len(h.msa().messages())
            c = h.login(p.port, mech="CRAM-MD5")        # sasldb read as nobody (group nogroup)
            code, lines = send_message(c, "dropped " + uuid.uuid4().hex[:8])
            self.assertEqual(code, 250, lines)
            c.cmd("QUIT")
            h.delivered_since(before)
            p.stop()
            self.assertEqual(p.proc.returncode, 0)
            self.assertFalse(os.path.exists(pidfile), "pidfile not removed at exit")

    def test_check_reports_files_the_user_cannot_read(self):
        p = h.Proxy(name="check-user", extra={"user": "nobody"})
        rootonly = os.path.join(p.dir, "root-only")
        os.mkdir(rootonly, 0o700)
        p.config["guard"]["state_file"] = os.path.join(rootonly, "bans.state")   # nobody cannot write there
        sasl = os.path.join(p.dir, "sasl")
        os.chmod(os.path.join(sasl, "sasldb2"), 0o600)       # root only
        p.write_config()
        r = run("-t", "-c", p.conf_file)
        self.assertEqual(r.returncode, 1, r.stdout)
        conf_lines = open(p.conf_file).read().splitlines()
        tls_line = next(i for i, l in enumerate(conf_lines, 1) if l.startswith("tls ="))
        # certs/proxy.key is 0600 root: loadable at start, but not at a reload as nobody.
        self.assertIn("%s:%d: tls.key" % (p.conf_file, tls_line), r.stdout)
        self.assertRegex(r.stdout, re.escape(os.path.join(sasl, "subproxy.conf")) + r":\d+: sasldb_path .*"
                         + re.escape(os.path.join(sasl, "sasldb2")) + ": user nobody cannot read it")
        self.assertIn("guard.state_file directory", r.stdout)
        self.assertNotIn("configuration OK", r.stdout)

    def test_check_unknown_user(self):
        p = h.Proxy(name="check-nouser", extra={"user": "no-such-user-%d" % os.getpid()})
        p.write_config()
        r = run("-t", "-c", p.conf_file)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, re.escape(p.conf_file) + r":\d+: user: no such user")


class Background(unittest.TestCase):
    def test_background_start_pidfile_and_sessions(self):
        # Without -f: the command returns once the daemon serves; SASL workers live in the
        # daemon (they are started after the fork).
        p = h.Proxy(name="bg")
        pidfile = os.path.join(p.dir, "subproxy.pid")
        p.config["pid_file"] = pidfile
        p.write_config()
        r = subprocess.run([h.SUBPROXY, "-c", p.conf_file], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = int(open(pidfile).read())
        try:
            self.assertTrue(h.wait_port(p.port))
            with open("/proc/%d/comm" % pid) as f:
                self.assertEqual(f.read().strip(), "subproxy")
            c = h.login(p.port, mech="PLAIN")
            self.assertEqual(c.cmd("QUIT")[0], 221)
            # A second instance on the same pidfile refuses to start, with the reason on stderr.
            r2 = subprocess.run([h.SUBPROXY, "-c", p.conf_file], capture_output=True, text=True, timeout=20)
            self.assertEqual(r2.returncode, 1)
            self.assertIn("subproxy is already running as pid %d" % pid, r2.stderr)
        finally:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.assertFalse(os.path.exists(pidfile))

    def test_background_start_failure_is_reported(self):
        busy = h.Proxy(name="bg-busy")
        with busy:
            p = h.Proxy(name="bg-fail", port=busy.port)
            p.write_config()
            r = subprocess.run([h.SUBPROXY, "-c", p.conf_file], capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 1)
            self.assertIn("Address already in use", r.stderr)


class Status(unittest.TestCase):
    def test_metrics_match_what_the_test_did(self):
        port = h.free_port()
        p = h.Proxy(name="metrics", extra={"status": {"address": "127.0.0.1", "port": port}})
        with p:
            self.assertTrue(h.wait_port(port))
            before = len(h.msa().messages())
            c = h.login(p.port, "alice", mech="PLAIN")
            code, lines = send_message(c, "metrics " + uuid.uuid4().hex[:8])
            self.assertEqual(code, 250, lines)
            c.cmd("QUIT")
            c = h.login(p.port, "bob", mech="LOGIN")
            c.cmd("QUIT")
            c = h.RawClient(p.port)
            c.reply()
            c.cmd("EHLO bad.example")
            c.starttls()
            c.cmd("EHLO bad.example")
            self.assertEqual(h.auth(c, "PLAIN", "alice", "wrong")[0], 535)
            c.cmd("QUIT")
            h.delivered_since(before)
            self.assertTrue(p.wait_log(": disconnect duration=", 5))
            deadline = time.monotonic() + 5
            while True:
                status, ctype, text = http_get(port, "/metrics")
                m = parse_prometheus(text)
                if m["subproxy_open_sessions"][1] == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(status, 200)
            self.assertTrue(ctype.startswith("text/plain; version=0.0.4"))
            # 3 customers + the harness's readiness probe (a bare connect).
            self.assertEqual(m["subproxy_sessions_total"], ["counter", 4.0])
            self.assertEqual(m["subproxy_open_sessions"], ["gauge", 0.0])
            self.assertEqual(m["subproxy_tls_handshakes_total"][1], 3.0)
            self.assertEqual(m["subproxy_auth_successes_total{mechanism=PLAIN}"][1], 1.0)
            self.assertEqual(m["subproxy_auth_successes_total{mechanism=LOGIN}"][1], 1.0)
            self.assertEqual(m["subproxy_auth_successes_total{mechanism=CRAM-MD5}"][1], 0.0)
            self.assertEqual(m["subproxy_auth_failures_total{mechanism=PLAIN}"][1], 1.0)
            self.assertEqual(m["subproxy_relayed_messages_total"][1], 1.0)
            self.assertGreater(m["subproxy_relayed_message_bytes_total"][1], 50)
            self.assertEqual(m["subproxy_replies_total{class=5xx}"][1], 1.0)   # the 535
            self.assertGreater(m["subproxy_replies_total{class=2xx}"][1], 10)
            self.assertEqual(m["subproxy_upstream_errors_total{kind=connect}"][1], 0.0)
            # The migration report per dialled port (the listener's port: no redirect here).
            self.assertEqual(m["subproxy_migration_users{port=%d}" % p.port], ["gauge", 1.0])
            self.assertEqual(m["subproxy_migration_submissions_total{port=%d}" % p.port], ["counter", 1.0])
            self.assertEqual(m["subproxy_migration_users{port=25}"], ["gauge", 0.0])
            self.assertEqual(m["subproxy_migration_submissions_total{port=465}"], ["counter", 0.0])
            # The JSON page carries the same numbers.
            status, ctype, text = http_get(port, "/status")
            doc = json.loads(text)
            self.assertEqual(ctype, "application/json")
            self.assertEqual(doc["metrics"]["sessions_total"], 4)
            self.assertEqual(doc["metrics"]["auth_successes"], {"PLAIN": 1, "LOGIN": 1, "CRAM-MD5": 0})
            self.assertEqual(doc["pid"], p.proc.pid)
            with self.assertRaises(urllib.error.HTTPError) as e:
                http_get(port, "/nothing")
            self.assertEqual(e.exception.code, 404)

    def test_upstream_errors_are_counted(self):
        port = h.free_port()
        p = h.Proxy(name="metrics-up", upstream={"port": h.free_port()},   # nobody listens there
                    extra={"status": {"port": port}})
        with p:
            c = h.RawClient(p.port)
            c.reply()
            c.cmd("EHLO x.example")
            c.starttls()
            c.cmd("EHLO x.example")
            self.assertEqual(h.auth(c, "PLAIN", "alice", h.USERS["alice"])[0], 454)
            c.close()
            # A TLS handshake that fails (garbage instead of a ClientHello) is counted too.
            c = h.RawClient(p.port)
            c.reply()
            c.cmd("EHLO x.example")
            self.assertEqual(c.cmd("STARTTLS")[0], 220)
            c.send(b"this is not TLS\r\n" * 20)
            self.assertTrue(c.closed())
            c.close()
            deadline = time.monotonic() + 5
            while True:
                m = parse_prometheus(http_get(port, "/metrics")[2])
                if m["subproxy_tls_handshake_failures_total"][1] >= 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(m["subproxy_tls_handshake_failures_total"][1], 1.0)
            self.assertEqual(m["subproxy_tls_handshakes_total"][1], 1.0)
            self.assertEqual(m["subproxy_upstream_errors_total{kind=connect}"][1], 1.0)
            self.assertEqual(m["subproxy_auth_temporary_failures_total"][1], 1.0)

    def test_bans_and_trap_detections_are_counted(self):
        port = h.free_port()
        p = h.Proxy(name="metrics-guard", extra={
            "status": {"port": port},
            "guard": {"auth_delay": 0.1, "auth_delay_max": 0.2, "ban_threshold": 2, "max_sessions_per_client": 0}})
        with p:
            c = h.RawClient(p.port)
            c.reply()
            c.cmd("EHLO bot.example")
            c.starttls()
            c.cmd("EHLO bot.example")
            self.assertEqual(c.cmd("MAIL FROM:<spam@example.com>")[0], 530)   # trap signal no_auth
            self.assertEqual(h.auth(c, "PLAIN", "alice", "guess1")[0], 535)
            self.assertEqual(h.auth(c, "PLAIN", "alice", "guess2")[0], 535)    # the second one bans
            c.close()
            late = h.RawClient(p.port)
            self.assertEqual(late.reply()[0], 421)
            late.close()
            m = parse_prometheus(http_get(port, "/metrics")[2])
            self.assertEqual(m["subproxy_bans_total"][1], 1.0)
            self.assertEqual(m["subproxy_ban_refusals_total"][1], 1.0)
            self.assertEqual(m["subproxy_auth_delayed_replies_total"][1], 2.0)
            self.assertEqual(m["subproxy_trap_detections_total{signal=no_auth}"][1], 1.0)

    def test_status_is_off_unless_configured(self):
        p = h.Proxy(name="nostatus")
        with p:
            self.assertNotIn("status endpoint", p.log_text())


class Migration(unittest.TestCase):
    NOTICE = "NOTICE: please set your mail program to port 587 (submission)"

    def test_report_lists_users_survives_restart_and_notice_lines(self):
        port = h.free_port()
        p = h.Proxy(name="migration", extra={
            "status": {"port": port, "token": TOKEN},
            "migration": {"state_file": "migration.state", "notice": self.NOTICE, "flush_interval": 1}})
        state = os.path.join(p.dir, "migration.state")
        with p:
            before = len(h.msa().messages())
            for user in ("alice", "bob"):
                c = h.RawClient(p.port)
                c.reply()
                c.cmd("EHLO customer.example")
                c.starttls()
                c.cmd("EHLO customer.example")
                code, lines = h.auth(c, "PLAIN", user, h.USERS[user])
                self.assertEqual((code, lines), (235, [self.NOTICE, "2.7.0 Authentication successful"]))
                code, lines = send_message(c, "migration " + user, sender=user + "@example.com")
                self.assertEqual(code, 250)
                self.assertEqual(lines[0], self.NOTICE)
                self.assertRegex(lines[-1], "queued as")       # the MSA's own line, last
                c.cmd("QUIT")
            h.delivered_since(before, 2)
            doc = json.loads(http_get(port, "/migration", TOKEN)[2])
            self.assertEqual(doc["total"], 2)
            self.assertEqual(sorted(r["user"] for r in doc["records"]), ["alice", "bob"])
            self.assertEqual({(r["address"], r["port"], r["count"]) for r in doc["records"]},
                             {("127.0.0.1", p.port, 1)})
        # Written at exit (and every flush_interval): -r reads the file.
        r = run("-r", "-c", p.conf_file)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertRegex(r.stdout, r"(?m)^alice +127\.0\.0\.1 +%d +1 " % p.port)
        self.assertRegex(r.stdout, r"(?m)^bob +127\.0\.0\.1 +%d +1 " % p.port)
        self.assertTrue(open(state).read().startswith("subproxy-migration 2\n"))
        # A restart keeps the counts.
        with p:
            c = h.login(p.port, "alice")
            self.assertEqual(send_message(c, "migration again")[0], 250)
            c.cmd("QUIT")
            doc = json.loads(http_get(port, "/migration", TOKEN)[2])
            alice = next(r for r in doc["records"] if r["user"] == "alice")
            self.assertEqual(alice["count"], 2)
            self.assertEqual(doc["total"], 3)
            # The timer flushes while running, too.
            deadline = time.monotonic() + 5
            while "R alice 127.0.0.1 %d 2 " % p.port not in open(state).read():
                self.assertLess(time.monotonic(), deadline, open(state).read())
                time.sleep(0.1)

    def test_report_without_state_file(self):
        p = h.Proxy(name="migration-none")
        p.write_config()
        r = run("-r", "-c", p.conf_file)
        self.assertEqual(r.returncode, 1)
        self.assertIn("migration.state_file is not set", r.stdout)


if __name__ == "__main__":
    unittest.main()
