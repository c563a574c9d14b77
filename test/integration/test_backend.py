"""Password backends: saslauthd (through a scripted saslauthd on a Unix socket, because a real
one cannot be made slow or hung on demand), the proof that a slow backend stalls nobody, and
backend outages (issue 8 item 4): a missing sasldb or a saslauthd that is down must give the
customer 454, count nothing against the customer (no penalty, no ban), be logged as a backend
problem and be counted in the metrics."""
import base64
import os
import socket
import struct
import time
import unittest
import uuid

import harness as h
from test_deploy import http_get, parse_prometheus


class FakeSaslauthd(h.ThreadedServer):
    """Speaks saslauthd's mux protocol: four counted strings in (user, password, service, realm),
    one counted string out ("OK" / "NO ...").  `slow_users` answer only after `delay` seconds."""

    def __init__(self, directory, users, slow_users=(), delay=6.0):
        self.path = os.path.join(directory, "mux")
        self.users = users
        self.slow = set(slow_users)
        self.delay = delay
        self.requests = []
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.path)
        os.chmod(self.path, 0o777)
        sock.listen(16)
        super().__init__(sock)

    @staticmethod
    def _counted(conn):
        head = b""
        while len(head) < 2:
            chunk = conn.recv(2 - len(head))
            if not chunk:
                raise EOFError
            head += chunk
        (n,) = struct.unpack(">H", head)
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data.decode()

    def handle(self, conn):
        try:
            user, password, service, realm = (self._counted(conn) for _ in range(4))
            self.requests.append((user, service, realm))
            if user in self.slow:
                time.sleep(self.delay)
            ok = self.users.get(user) == password
            reply = b"OK" if ok else b"NO authentication failed"
            conn.sendall(struct.pack(">H", len(reply)) + reply)
        except (EOFError, OSError):
            pass
        finally:
            conn.close()


def saslauthd_dir(name):
    d = os.path.join(h.workdir(), name + "-" + uuid.uuid4().hex[:6])
    os.makedirs(d)
    os.chmod(d, 0o755)
    with open(os.path.join(d, "subproxy.conf"), "w") as f:
        f.write("pwcheck_method: saslauthd\nsaslauthd_path: %s/mux\nmech_list: PLAIN LOGIN\n" % d)
    return d


class Saslauthd(unittest.TestCase):
    def test_plain_and_login_through_saslauthd(self):
        d = saslauthd_dir("saslauthd")
        with FakeSaslauthd(d, h.USERS) as fake:
            with h.Proxy(name="saslauthd", sasl_dir=d, mechanisms=["PLAIN", "LOGIN"]) as p:
                for mech in ("PLAIN", "LOGIN"):
                    c = h.login(p.port, mech=mech)
                    c.cmd("QUIT")
                self.assertEqual(fake.requests[0][0], "alice")
                self.assertEqual(fake.requests[0][1], "smtp")

    def test_slow_backend_stalls_no_other_session(self):
        d = saslauthd_dir("saslauthd-slow")
        with FakeSaslauthd(d, dict(h.USERS, slowpoke="pw"), slow_users={"slowpoke"}, delay=6.0):
            p = h.Proxy(name="slow", sasl_dir=d, mechanisms=["PLAIN", "LOGIN"])
            p.config["auth"]["workers"] = 1     # the pool must grow past the stuck thread
            with p:
                slow = h.RawClient(p.port)
                slow.reply()
                slow.cmd("EHLO slow.example")
                slow.starttls()
                slow.cmd("EHLO slow.example")
                slow.send("AUTH PLAIN " + base64.b64encode(b"\0slowpoke\0pw").decode() + "\r\n")
                time.sleep(0.5)         # the backend now sits on that request
                started = time.monotonic()
                before = len(h.msa().messages())
                s = h.smtp(p.port)
                s.login("alice", h.USERS["alice"])
                subject = "while-slow " + uuid.uuid4().hex[:8]
                s.sendmail("alice@example.com", ["bob@example.com"], h.message(subject))
                s.quit()
                elapsed = time.monotonic() - started
                self.assertLess(elapsed, 3.0, "an honest customer waited %.1fs behind a slow backend" % elapsed)
                self.assertIn(subject.encode(), h.delivered_since(before)[-1][1])
                code, _ = slow.reply()      # the slow one is answered when its backend answers
                self.assertEqual(code, 235)
                self.assertGreater(time.monotonic() - started, 4.0)
                slow.close()

    def test_hung_backend_times_out_with_454(self):
        d = saslauthd_dir("saslauthd-hung")
        with FakeSaslauthd(d, dict(h.USERS, stuck="pw"), slow_users={"stuck"}, delay=20.0):
            p = h.Proxy(name="hung", sasl_dir=d, mechanisms=["PLAIN", "LOGIN"])
            p.config["auth"]["timeout"] = 2
            with p:
                c = h.RawClient(p.port)
                c.reply()
                c.cmd("EHLO stuck.example")
                c.starttls()
                c.cmd("EHLO stuck.example")
                started = time.monotonic()
                code, lines = h.auth(c, "PLAIN", "stuck", "pw")
                self.assertEqual(code, 454)
                self.assertLess(time.monotonic() - started, 5.0)
                # The session is usable again: another AUTH (fresh SASL state) works.
                self.assertEqual(h.auth(c, "PLAIN", "alice", h.USERS["alice"])[0], 235)
                c.close()


class BackendOutage(unittest.TestCase):
    TRIES = 4       # right passwords during the outage: twice the ban threshold

    def outage_proxy(self, name, **kw):
        """A Proxy whose guard bans after 2 failures and delays each, with a status endpoint."""
        p = h.Proxy(name=name, limits={"max_auth_failures": 20}, **kw)
        p.config["guard"] = {"auth_delay": 0.2, "auth_delay_max": 0.4, "ban_threshold": 2,
                             "failure_window": 600, "ban_time": 600, "max_sessions_per_client": 0}
        p.config["status"] = {"address": "127.0.0.1", "port": h.free_port()}
        return p

    def assert_outage_handled(self, p, mech, user, password, cause):
        """TRIES right passwords in TRIES sessions: each 454 4.7.0, none held back for a penalty,
        no ban (the next connection is greeted), the log names the backend, the metric counts."""
        for _ in range(self.TRIES):
            c = h.RawClient(p.port)
            self.assertEqual(c.reply()[0], 220)      # a ban would answer 421 here
            c.cmd("EHLO customer.example")
            c.starttls()
            c.cmd("EHLO customer.example")
            started = time.monotonic()
            code, lines = h.auth(c, mech, user, password)
            self.assertEqual((code, lines[0][:5]), (454, "4.7.0"), lines)
            self.assertLess(time.monotonic() - started, 0.2 if mech == "PLAIN" else 1.0, "a penalty delay was applied")
            c.cmd("QUIT")
            c.close()
        c = h.RawClient(p.port)
        self.assertEqual(c.reply()[0], 220)
        c.close()
        log = p.log_text()
        self.assertEqual(log.count("SASL %s authentication temporarily unavailable: password backend problem: %s"
                                   % (mech, cause)), self.TRIES, log)
        self.assertNotIn("authentication failed", log)    # what fail2ban matches
        self.assertNotIn("auth penalty", log)
        self.assertNotIn("ban:", log)
        m = parse_prometheus(http_get(p.config["status"]["port"], "/metrics")[2])
        self.assertEqual(m["subproxy_auth_backend_errors_total{kind=error}"][1], float(self.TRIES))
        self.assertEqual(m["subproxy_auth_backend_errors_total{kind=timeout}"][1], 0.0)
        self.assertEqual(m["subproxy_auth_temporary_failures_total"][1], float(self.TRIES))
        self.assertEqual(m["subproxy_auth_failures_total{mechanism=%s}" % mech][1], 0.0)
        self.assertEqual(m["subproxy_bans_total"][1], 0.0)

    def test_missing_sasldb_is_454_and_bans_nobody(self):
        p = self.outage_proxy("sasldb-missing")
        db = os.path.join(p.dir, "sasl", "sasldb2")
        saved = db + ".saved"
        os.rename(db, saved)            # Cyrus takes a missing file for an unknown user
        with p:
            self.assert_outage_handled(p, "PLAIN", "alice", h.USERS["alice"], "sasldb: No such file or directory")
            # CRAM-MD5 reads its secret from the same store.
            c = h.RawClient(p.port)
            c.reply()
            c.cmd("EHLO customer.example")
            c.starttls()
            c.cmd("EHLO customer.example")
            self.assertEqual(h.auth(c, "CRAM-MD5", "bob", h.USERS["bob"])[0], 454)
            # Back without a restart (Cyrus opens the file at every lookup), and a wrong
            # password is a customer's failure again.
            os.rename(saved, db)
            self.assertEqual(h.auth(c, "PLAIN", "alice", "wrong")[0], 535)
            c.close()
            h.login(p.port, "alice").close()
            self.assertTrue(p.wait_log("auth penalty"))

    def test_saslauthd_down_is_454_and_bans_nobody(self):
        d = saslauthd_dir("saslauthd-down")      # nobody listens on its mux
        p = self.outage_proxy("saslauthd-down", sasl_dir=d, mechanisms=["PLAIN", "LOGIN"])
        with p:
            self.assert_outage_handled(p, "LOGIN", "alice", h.USERS["alice"], "SASL(-1): generic failure")
            self.assertIn("cannot connect to saslauthd server", p.log_text())


if __name__ == "__main__":
    unittest.main()
