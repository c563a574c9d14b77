"""The migration report the help desk works from (issue 9 item 6): one record per (user, client
address, dialled port) with count, first/last seen, mechanism and TLS version; `subproxy -r` as a
text table, --csv and --json, filtered by --port, --since and --not-since; the per-day history
per dialled port (-r --history, /metrics); the status pages follow.

Two listeners stand for the intercepted ports 25 (STARTTLS) and 465 (implicit TLS): without a
REDIRECT the dialled port is the listener's own port (test_intercept.py covers the redirect).
Clients come from 127.0.0.1 and 127.0.0.2 (both loopback) to give two client addresses."""

import csv
import io
import json
import os
import smtplib
import socket
import ssl
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import harness as h

TOKEN = "migration-report-token-0123456789"


def report(proxy, *args):
    r = subprocess.run([h.SUBPROXY, "-r", "-c", proxy.conf_file, *args], capture_output=True, text=True,
                       timeout=30)
    return r.returncode, r.stdout, r.stderr


def tls_context(max_version=None):
    ctx = h.client_tls_context()
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def submit(port, user, mech, source="127.0.0.1", implicit=False, max_version=None, subject="report"):
    """One message through the proxy; returns the TLS version the session used."""
    ctx = tls_context(max_version)
    if implicit:
        raw = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0))
        sock = ctx.wrap_socket(raw, server_hostname="proxy.test")
        s = smtplib.SMTP(local_hostname="customer.example", timeout=20)
        s.sock = sock
        s.file = None
        code, _ = s.getreply()
        assert code == 220, code
    else:
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="customer.example", timeout=20,
                         source_address=(source, 0))
        s._host = "proxy.test"
        s.ehlo()
        s.starttls(context=ctx)
    version = s.sock.version()
    s.ehlo()
    s.user, s.password = user, h.USERS[user]
    code, text = s.auth(mech, {"PLAIN": s.auth_plain, "LOGIN": s.auth_login, "CRAM-MD5": s.auth_cram_md5}[mech])
    assert code == 235, (code, text)
    s.sendmail(user + "@example.com", ["bob@example.com"], h.message(subject, sender=user + "@example.com"))
    s.quit()
    return version


def http_get(port, path, token=TOKEN):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()


class MigrationReport(unittest.TestCase):

    def test_records_per_user_address_and_dialled_port(self):
        status = h.free_port()
        p = h.Proxy(name="migration-report", extra={
            "status": {"port": status, "token": TOKEN},
            "migration": {"state_file": "migration.state", "flush_interval": 1, "history_days": 30}})
        smtp_port, smtps_port = p.port, h.free_port()   # stand-ins for 25 and 465
        p.config["listen"] = [{"address": "127.0.0.1", "port": smtp_port},
                              {"address": "127.0.0.1", "port": smtps_port, "tls": "implicit"}]
        started = int(time.time())
        with p:
            before = len(h.msa().messages())
            self.assertEqual(submit(smtp_port, "alice", "PLAIN"), "TLSv1.3")
            self.assertEqual(submit(smtp_port, "alice", "PLAIN"), "TLSv1.3")
            self.assertEqual(submit(smtp_port, "bob", "LOGIN", source="127.0.0.2",
                                    max_version=ssl.TLSVersion.TLSv1_2), "TLSv1.2")
            time.sleep(1.1)   # a later second: the 465 record must sort first (last seen, newest first)
            self.assertEqual(submit(smtps_port, "alice", "CRAM-MD5", implicit=True), "TLSv1.3")
            h.delivered_since(before, 4)

            # The status endpoint follows the records while the daemon runs.
            doc = json.loads(http_get(status, "/migration"))
            self.assertEqual(len(doc["records"]), 3)
            self.assertEqual(doc["total"], 4)
            text = http_get(status, "/migration.txt")
            self.assertRegex(text, r"(?m)^bob +127\.0\.0\.2 +%d +1 " % smtp_port)
            self.assertIn("USERS:%d" % smtps_port, text)
            metrics = http_get(status, "/metrics", token=None)
            self.assertIn('subproxy_migration_users{port="%d"} 2\n' % smtp_port, metrics)
            self.assertIn('subproxy_migration_users{port="%d"} 1\n' % smtps_port, metrics)
            self.assertIn('subproxy_migration_submissions_total{port="%d"} 3\n' % smtp_port, metrics)
            self.assertIn('subproxy_migration_submissions_total{port="%d"} 1\n' % smtps_port, metrics)
            self.assertIn('subproxy_migration_users{port="25"} 0\n', metrics)   # present from the start
            self.assertIn('subproxy_migration_users{port="465"} 0\n', metrics)
            # Without the token the records stay private.
            with self.assertRaises(urllib.error.HTTPError) as e:
                http_get(status, "/migration", token=None)
            self.assertEqual(e.exception.code, 401)
        ended = int(time.time())

        # --csv: user, address, dialled port, count, first/last seen, mechanism, TLS version.
        rc, out, err = report(p, "--csv")
        self.assertEqual(rc, 0, err)
        rows = list(csv.DictReader(io.StringIO(out)))
        self.assertEqual(list(rows[0].keys()), ["user", "address", "port", "count", "first_seen_utc",
                                                "last_seen_utc", "mechanism", "tls"])
        got = {(r["user"], r["address"], int(r["port"])): (int(r["count"]), r["mechanism"], r["tls"])
               for r in rows}
        self.assertEqual(got, {
            ("alice", "127.0.0.1", smtp_port): (2, "PLAIN", "TLSv1.3"),
            ("bob", "127.0.0.2", smtp_port): (1, "LOGIN", "TLSv1.2"),
            ("alice", "127.0.0.1", smtps_port): (1, "CRAM-MD5", "TLSv1.3"),
        })
        self.assertEqual((rows[0]["user"], int(rows[0]["port"])), ("alice", smtps_port))   # newest first
        self.assertEqual([r["last_seen_utc"] for r in rows], sorted((r["last_seen_utc"] for r in rows), reverse=True))
        first = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started))
        last = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ended))
        for r in rows:
            self.assertTrue(first <= r["first_seen_utc"] <= r["last_seen_utc"] <= last, r)

        # --json parses and says the same.
        rc, out, err = report(p, "--json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["total"], 4)
        self.assertEqual(doc["total_by_port"], {str(smtp_port): 3, str(smtps_port): 1})
        bob = next(r for r in doc["records"] if r["user"] == "bob")
        self.assertEqual((bob["address"], bob["port"], bob["count"], bob["mechanism"], bob["tls"]),
                         ("127.0.0.2", smtp_port, 1, "LOGIN", "TLSv1.2"))
        today = time.strftime("%Y-%m-%d", time.gmtime(ended))
        self.assertIn({"day": today, "port": smtp_port, "users": 2, "submissions": 3}, doc["history"])
        self.assertIn({"day": today, "port": smtps_port, "users": 1, "submissions": 1}, doc["history"])

        # --port filters.
        rc, out, err = report(p, "--csv", "--port", str(smtps_port))
        self.assertEqual(rc, 0, err)
        self.assertEqual([(r["user"], r["port"]) for r in csv.DictReader(io.StringIO(out))],
                         [("alice", str(smtps_port))])

        # The default text table, newest first; plain -r still works for scripts.
        rc, out, err = report(p)
        self.assertEqual(rc, 0, err)
        self.assertIn("Submissions through the intercepted ports: 4 (%s)" % ", ".join(
            "port %d: %d" % pn for pn in sorted([(smtp_port, 3), (smtps_port, 1)])), out)
        self.assertRegex(out, r"(?m)^USER +ADDRESS +PORT +COUNT +FIRST SEEN \(UTC\) +LAST SEEN \(UTC\) +MECH +TLS$")
        self.assertRegex(out, r"(?m)^alice +127\.0\.0\.1 +%d +2 .* PLAIN +TLSv1\.3$" % smtp_port)
        self.assertRegex(out, r"(?m)^bob +127\.0\.0\.2 +%d +1 .* LOGIN +TLSv1\.2$" % smtp_port)
        self.assertLess(out.index("CRAM-MD5"), out.index("LOGIN"))

        # --history: today's submissions and distinct users per dialled port.
        rc, out, err = report(p, "--history")
        self.assertEqual(rc, 0, err)
        self.assertIn("last 30 days", out)
        # Ports in ascending order, two columns each.
        columns = sorted([(smtp_port, "2 +3"), (smtps_port, "1 +1")])
        self.assertRegex(out, r"(?m)^DAY \(UTC\) +USERS:%d +SUBMISSIONS:%d +USERS:%d +SUBMISSIONS:%d$" %
                         (columns[0][0], columns[0][0], columns[1][0], columns[1][0]))
        self.assertRegex(out, r"(?m)^%s +%s +%s$" % (today, columns[0][1], columns[1][1]))
        rc, out, err = report(p, "--history", "--csv", "--port", str(smtp_port))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "day,port,users,submissions\n%s,%d,2,3\n" % (today, smtp_port))  # text mode: CRLF read as \n

        # --since: seen in the last day (all); --not-since: nobody has been silent since today.
        rc, out, err = report(p, "--csv", "--since", "1")
        self.assertEqual(len(list(csv.DictReader(io.StringIO(out)))), 3)
        rc, out, err = report(p, "--csv", "--not-since", "2099-01-01")     # silent since then: everyone
        self.assertEqual(len(list(csv.DictReader(io.StringIO(out)))), 3)
        rc, out, err = report(p, "--csv", "--not-since", "1")     # silent for a day: nobody
        self.assertEqual(rc, 0, err)
        self.assertEqual(list(csv.DictReader(io.StringIO(out))), [])
        rc, out, err = report(p, "--csv", "--since", "2099-01-01")
        self.assertEqual(list(csv.DictReader(io.StringIO(out))), [])

        # The state file is version 2.
        with open(os.path.join(p.dir, "migration.state")) as f:
            state = f.read()
        self.assertTrue(state.startswith("subproxy-migration 2\n"), state)
        self.assertIn("R bob 127.0.0.2 %d 1 " % smtp_port, state)

    def test_options_are_checked(self):
        p = h.Proxy(name="migration-options", extra={"migration": {"state_file": "migration.state"}})
        p.write_config()
        for args, needle in ((["--json", "--csv"], "exclude each other"),
                             (["--port", "x"], "not a port number"),
                             (["--port", "0"], "not a port number"),
                             (["--since", "yesterday"], "number of days"),
                             (["--not-since", "2026-02-30"], "YYYY-MM-DD"),
                             (["--history", "--not-since", "3"], "--not-since selects users")):
            rc, out, err = report(p, *args)
            self.assertEqual(rc, 2, args)
            self.assertIn(needle, err, args)
        r = subprocess.run([h.SUBPROXY, "-c", p.conf_file, "--json"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("go with -r", r.stderr)
        rc, out, err = report(p)      # no state file yet: an empty report
        self.assertEqual(rc, 0, err)
        self.assertIn("Submissions through the intercepted ports: 0", out)

    def test_not_since_lists_the_users_who_went_silent(self):
        """--not-since is about people: carol, silent on 25 since January, is listed; dave, whose
        old home record is as old but who sent yesterday from the office, is not."""
        p = h.Proxy(name="migration-silent", extra={"migration": {"state_file": "migration.state"}})
        now = int(time.time())
        jan = 1767225600   # 2026-01-01 00:00 UTC
        with open(os.path.join(p.dir, "migration.state"), "w") as f:
            f.write("subproxy-migration 2\ntoday 2026-01-01\ntotal 25 12\n"
                    "R carol 192.0.2.7 25 5 %d %d PLAIN TLSv1.2\n" % (jan - 86400, jan) +
                    "R dave 192.0.2.8 25 6 %d %d LOGIN TLSv1.3\n" % (jan - 86400, jan) +
                    "R dave 198.51.100.8 25 1 %d %d LOGIN TLSv1.3\n" % (now - 86400, now - 86400))
        p.write_config()
        rc, out, err = report(p, "--csv", "--not-since", "2026-02-01")
        self.assertEqual(rc, 0, err)
        self.assertEqual([(r["user"], r["address"]) for r in csv.DictReader(io.StringIO(out))],
                         [("carol", "192.0.2.7")])
        rc, out, err = report(p, "--csv", "--since", "2")
        self.assertEqual([(r["user"], r["address"]) for r in csv.DictReader(io.StringIO(out))],
                         [("dave", "198.51.100.8")])

    def test_version_1_state_file_is_converted(self):
        p = h.Proxy(name="migration-v1", extra={"migration": {"state_file": "migration.state",
                                                               "flush_interval": 1}})
        state = os.path.join(p.dir, "migration.state")
        with open(state, "w") as f:
            f.write("subproxy-migration 1\ntotal 4\nU carol 4 1000 2000 192.0.2.7 TLSv1.0\n"
                    "A 192.0.2.7 4 1000 2000 carol TLSv1.0\n")
        p.write_config()
        rc, out, err = report(p, "--json")   # -r reads a version 1 file as it is
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["records"][0]["user"], "carol")
        self.assertIsNone(doc["records"][0]["port"])
        self.assertEqual(doc["total_by_port"], {"unknown": 4})
        with p:
            # The daemon converts it and writes version 2 at its first flush, before any mail.
            deadline = time.monotonic() + 5
            while not open(state).read().startswith("subproxy-migration 2\n"):
                self.assertLess(time.monotonic(), deadline, open(state).read())
                time.sleep(0.1)
            before = len(h.msa().messages())
            submit(p.port, "alice", "PLAIN")
            h.delivered_since(before)
        rc, out, err = report(p, "--csv")
        rows = {r["user"]: r for r in csv.DictReader(io.StringIO(out))}
        self.assertEqual((rows["carol"]["port"], rows["carol"]["count"], rows["carol"]["tls"]), ("", "4", "TLSv1.0"))
        self.assertEqual((rows["alice"]["port"], rows["alice"]["count"]), (str(p.port), "1"))
        rc, out, err = report(p)
        self.assertRegex(out, r"(?m)^carol +192\.0\.2\.7 +- +4 ")
        self.assertIn("port unknown: 4", out)


if __name__ == "__main__":
    unittest.main()
