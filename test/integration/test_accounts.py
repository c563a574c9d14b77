"""Compromised accounts (issue 12), with the real Postfix MSA: per-user sending limits (451 with
the contact text, nothing past the limit reaches the MSA, another user unaffected, counted on what
the MSA accepted), one account from many places (several 127.0.0.x client addresses; flagged,
and with action "refuse" refused until `subproxy -A` clears it), weak passwords (libpwquality
with cracklib's dictionary), the report (`-r --flags`, --json, --csv), the metrics, and that no
password is written anywhere."""

import base64
import csv
import io
import json
import os
import re
import socket
import subprocess
import time
import unittest
import urllib.request

import harness as h

CONTACT = "Call the help desk at 0800 555 0100."
RECIPIENTS = ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com",
              "eve@example.com"]


def run(proxy, *args):
    r = subprocess.run([h.SUBPROXY, "-c", proxy.conf_file, *args], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def login_from(port, source, user, password, mech="PLAIN", dialled="127.0.0.1"):
    """(RawClient, code, lines) after AUTH from client address `source` to `dialled`."""
    c = h.RawClient(port, host=dialled)
    c.sock.close()
    c.sock = socket.create_connection((dialled, port), timeout=15, source_address=(source, 0))
    assert c.reply()[0] == 220
    c.cmd("EHLO customer.example")
    c.starttls()
    c.cmd("EHLO customer.example")
    code, lines = h.auth(c, mech, user, password)
    return c, code, lines


def deliveries(message_id):
    """Maildir files at the MSA that hold this Message-Id (one per delivered recipient)."""
    return [path for path, data in h.msa().messages() if message_id.encode() in data]


def state_file_settled(path, needle, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                if needle in f.read():
                    return True
        time.sleep(0.1)
    return False


def accounts_proxy(name, accounts, **kw):
    """A proxy with the accounts group, a state file and the control socket (-a/-A ask it)."""
    p = h.Proxy(name=name, **kw)
    accounts = dict({"state_file": os.path.join(p.dir, "accounts.state")}, **accounts)
    p.config["accounts"] = accounts
    p.config["guard"] = dict(p.config["guard"], control_socket=os.path.join(p.dir, "control.sock"))
    return p


class SendingLimits(unittest.TestCase):

    def setUp(self):
        self.p = accounts_proxy("accounts-limits", {
            "contact": CONTACT,
            "limits": {"window": 3600, "messages": 2, "recipients": 3},
        }).start()

    def tearDown(self):
        self.p.stop()

    def test_messages_past_the_limit_get_451_and_never_reach_the_msa(self):
        c = h.login(self.p.port, "alice")
        before = len(h.msa().messages())
        for i in range(2):
            code, _ = h.send_message(c, "limit-ok-%d" % i)
            self.assertEqual(code, 250)
        h.delivered_since(before, 2)
        # The third MAIL is refused by the proxy: 451 4.7.1 with the contact text.
        code, lines = c.cmd("MAIL FROM:<alice@example.com>")
        self.assertEqual(code, 451, lines)
        text = " ".join(lines)
        self.assertIn("4.7.1 Sending limit reached", text)
        self.assertIn("2 messages per 1 hour", text)
        self.assertIn(CONTACT, text)
        # Its RCPT and DATA find no transaction at the MSA: nothing is queued.
        c.send("RCPT TO:<bob@example.com>\r\nDATA\r\n")
        self.assertEqual(c.reply()[0] // 100, 5)
        self.assertEqual(c.reply()[0] // 100, 5)
        c.cmd("QUIT")
        c.close()
        time.sleep(1)
        self.assertEqual(len(h.msa().messages()), before + 2, "a message past the limit reached the MSA")
        # A new session of the same account is still limited (the count is per account).
        c = h.login(self.p.port, "alice")
        self.assertEqual(c.cmd("MAIL FROM:<other@example.com>")[0], 451)
        c.close()
        # Another user is unaffected.
        c = h.login(self.p.port, "bob")
        code, _ = h.send_message(c, "limit-bob", sender="bob@example.com")
        self.assertEqual(code, 250)
        c.close()
        h.delivered_since(before + 2, 1)
        log = self.p.log_text()
        self.assertIn("accounts: sending limit reached: messages=2 limit=2 window=3600s, sasl_username=alice", log)
        self.assertIn("accounts: flagged sending_limit: messages=2 limit=2 window=3600s, sasl_username=alice", log)
        self.assertNotIn("sasl_username=bob, accounts", log)
        code, out, err = run(self.p, "-a")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"(?m)^alice sending_limit first=\S+ last=\S+ count=2 messages=2 limit=2 window=3600s$")
        self.assertNotIn("bob", out)

    def test_recipients_counted_on_the_msa_250_only(self):
        # bob: 3 recipients per hour.  One refused by the MSA itself does not count (the ones
        # behind it wait for its 501 rather than being refused while it is under way).
        c = h.login(self.p.port, "bob")
        mid = "rcpt-limit-%d@test" % os.getpid()
        c.send("MAIL FROM:<bob@example.com>\r\n" "RCPT TO:<bad address@example.com>\r\n" +
               "".join("RCPT TO:<%s>\r\n" % r for r in RECIPIENTS) + "DATA\r\n")
        codes = [c.reply()[0] for _ in range(2 + len(RECIPIENTS) + 1)]
        # MAIL; the MSA's 501 to the bad address; 3 accepted; 451 451 from the proxy; DATA 354.
        self.assertEqual(codes, [250, 501, 250, 250, 250, 451, 451, 354], codes)
        c.send("From: bob@example.com\r\nSubject: rcpt limit\r\nMessage-Id: <%s>\r\n\r\nHi.\r\n.\r\n" % mid)
        self.assertEqual(c.reply()[0], 250)
        c.cmd("QUIT")
        c.close()
        deadline = time.monotonic() + 10
        while len(deliveries(mid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        self.assertEqual(len(deliveries(mid)), 3, "only the 3 recipients within the limit reach the MSA")
        self.assertIn("accounts: sending limit reached: recipients=3 limit=3 window=3600s, sasl_username=bob",
                      self.p.log_text())


if __name__ == "__main__":
    unittest.main()


class ManyPlaces(unittest.TestCase):

    def test_refused_from_too_many_addresses_until_cleared(self):
        p = accounts_proxy("accounts-places", {
            "contact": CONTACT,
            "places": {"max_addresses": 2, "action": "refuse", "refuse_code": 454},
        })
        with p:
            for source in ("127.0.0.2", "127.0.0.3"):
                c, code, _ = login_from(p.port, source, "alice", h.USERS["alice"])
                self.assertEqual(code, 235)
                c.close()
            # The third place crosses max_addresses: flagged and, with action refuse, refused.
            c, code, lines = login_from(p.port, "127.0.0.4", "alice", h.USERS["alice"])
            self.assertEqual(code, 454, lines)
            self.assertIn("4.7.0 Account suspended", " ".join(lines))
            self.assertIn(CONTACT, " ".join(lines))
            c.close()
            # Refused from anywhere, even a place it used before; bob is unaffected.
            c, code, _ = login_from(p.port, "127.0.0.2", "alice", h.USERS["alice"])
            self.assertEqual(code, 454)
            c.close()
            c, code, _ = login_from(p.port, "127.0.0.4", "bob", h.USERS["bob"])
            self.assertEqual(code, 235)
            c.close()
            log = p.log_text()
            self.assertRegex(log, r"\[127\.0\.0\.4\]:\d+: accounts: flagged many_addresses: 3 addresses in 86400s "
                                  r"\(max 2\): 127\.0\.0\.[234], 127\.0\.0\.[234], 127\.0\.0\.[234], sasl_username=alice")
            self.assertIn("accounts: login refused: account flagged for logins from too many places", log)
            # -a lists it (asked of the running daemon); -A clears it; then alice logs in again.
            code, out, err = run(p, "-a")
            self.assertEqual(code, 0, err)
            self.assertRegex(out, r"(?m)^alice many_addresses first=\S+ last=\S+ count=3 3 addresses")
            code, out, err = run(p, "-A", "ALICE")  # any spelling of the account
            self.assertEqual((code, out), (0, "cleared alice\n"), err)
            self.assertEqual(run(p, "-a")[1], "")
            c, code, _ = login_from(p.port, "127.0.0.4", "alice", h.USERS["alice"])
            self.assertEqual(code, 235)
            self.assertEqual(h.send_message(c, "after-clear")[0], 250)
            c.close()
            code, out, err = run(p, "-A", "alice")
            self.assertEqual(code, 1)
            self.assertIn("not flagged", err + out)

    def test_backend_upstream_refused_after_the_msas_235(self):
        # The MSA checks the password; the proxy learns of the login from its 235, closes that
        # MSA session and answers 535 instead (refuse_code).
        p = accounts_proxy("accounts-places-upstream", {"places": {"max_addresses": 1, "action": "refuse",
                                                                   "refuse_code": 535}},
                           backend="upstream", login="none", mechanisms=("PLAIN", "LOGIN"))
        with p:
            c, code, _ = login_from(p.port, "127.0.0.7", "alice", h.USERS["alice"])
            self.assertEqual(code, 235)
            c.close()
            c, code, lines = login_from(p.port, "127.0.0.8", "alice", h.USERS["alice"], "LOGIN")
            self.assertEqual(code, 535, lines)
            self.assertIn("5.7.8 Account suspended", " ".join(lines))
            # The session goes on unauthenticated: MAIL is refused, nothing reaches the MSA.
            self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>")[0], 530)
            c.close()
            self.assertIn("accounts: flagged many_addresses", p.log_text())

    def test_flag_only_by_default_and_cleared_in_the_state_file_without_a_daemon(self):
        p = accounts_proxy("accounts-places-flag", {"places": {"max_addresses": 1, "max_destinations": 0}})
        state = p.config["accounts"]["state_file"]
        with p:
            for source in ("127.0.0.5", "127.0.0.6"):
                c, code, _ = login_from(p.port, source, "bob", h.USERS["bob"])
                self.assertEqual(code, 235)  # action "flag": logged and reported, not refused
                c.close()
            self.assertTrue(state_file_settled(state, "flag many_addresses"))
        code, out, err = run(p, "-r", "--flags", "--json")
        self.assertEqual(code, 0, err)
        [entry] = json.loads(out)
        self.assertEqual(entry["user"], "bob")
        self.assertEqual(entry["flags"][0]["reason"], "many_addresses")
        self.assertEqual(entry["flags"][0]["count"], 2)
        self.assertIn("127.0.0.5", entry["flags"][0]["evidence"])
        code, out, err = run(p, "-r", "--flags", "--csv")
        rows = list(csv.DictReader(io.StringIO(out)))
        self.assertEqual([(r["user"], r["reason"]) for r in rows], [("bob", "many_addresses")])
        code, out, err = run(p, "-A", "bob")
        self.assertEqual(code, 0, err)
        self.assertIn("cleared bob (in %s; no daemon was running)" % state, out)
        self.assertEqual(run(p, "-r", "--flags")[1], "")


    def test_many_destinations_flagged_then_refused(self):
        # One customer address, three dialled addresses (a bot walking through the ISP's
        # submission addresses): the third is one more than max_destinations.
        port = h.free_port()
        dialled = ("127.0.0.30", "127.0.0.31", "127.0.0.32")
        p = accounts_proxy("accounts-destinations",
                           {"places": {"max_addresses": 0, "max_destinations": 2, "action": "refuse"}},
                           port=port, listen=[{"address": a, "port": port} for a in dialled],
                           wait_host=dialled[0])
        with p:
            for a in dialled[:2]:
                c, code, _ = login_from(p.port, "127.0.0.9", "alice", h.USERS["alice"], dialled=a)
                self.assertEqual(code, 235)
                c.close()
            self.assertNotIn("accounts: flagged", p.log_text())
            c, code, lines = login_from(p.port, "127.0.0.9", "alice", h.USERS["alice"], dialled=dialled[2])
            self.assertEqual(code, 454, lines)     # the login that crossed the line is refused too
            c.close()
            self.assertTrue(p.wait_log("accounts: flagged many_destinations: 3 "), p.log_text())
            flagged = [l for l in p.log_text().splitlines() if "flagged many_destinations" in l][0]
            for a in dialled:
                self.assertIn(a, flagged)
            # Refused on every address now, even the first; bob is not concerned.
            c, code, _ = login_from(p.port, "127.0.0.9", "alice", h.USERS["alice"], dialled=dialled[0])
            self.assertEqual(code, 454)
            c.close()
            c, code, _ = login_from(p.port, "127.0.0.9", "bob", h.USERS["bob"], dialled=dialled[1])
            self.assertEqual(code, 235)
            c.close()
            self.assertRegex(run(p, "-a")[1], r"(?m)^alice many_destinations .*count=3")
            self.assertEqual(run(p, "-A", "alice")[0], 0)
            c, code, _ = login_from(p.port, "127.0.0.9", "alice", h.USERS["alice"], dialled=dialled[2])
            self.assertEqual(code, 235)
            c.close()


class Fail2ban(unittest.TestCase):
    """The shipped accounts filter, run by the real fail2ban-regex on what subproxy logged and
    on its sample lines."""

    def setUp(self):
        self.filter = h.fail2ban_filter("subproxy-accounts")
        if not self.filter:
            self.skipTest("fail2ban-regex not installed (make deps)")

    def regex(self, logfile, mode=None, out=None):
        return h.fail2ban_regex(logfile, self.filter + ("[mode=%s]" % mode if mode else ""), out)

    def test_filter_matches_the_accounts_lines_subproxy_logged(self):
        p = accounts_proxy("accounts-f2b", {"limits": {"messages": 1, "recipients": 100},
                                            "places": {"max_addresses": 1, "max_destinations": 0,
                                                       "action": "refuse"},
                                            "passwords": {"min_score": 50}})
        with p:
            c, code, _ = login_from(p.port, "127.0.0.51", "alice", h.USERS["alice"])
            self.assertEqual(h.send_message(c, "f2b-1")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>")[0], 451)     # sending limit
            c.close()
            for _ in range(2):   # a second place: flagged, then refused
                c, code, _ = login_from(p.port, "127.0.0.52", "alice", h.USERS["alice"])
                self.assertEqual(code, 454)
                c.close()
            self.assertTrue(p.wait_log("accounts: login refused"))
            self.assertTrue(p.wait_log("weak_password"))   # "alice-secret" holds the user name
        syslog = os.path.join(os.path.dirname(os.path.dirname(self.filter)), "mail.log")
        lines = h.as_syslog(p, syslog)
        refusals = sum("accounts: sending limit reached" in l or "accounts: login refused" in l for l in lines)
        flags = sum(re.search(r"accounts: flagged (sending_limit|many_addresses)", l) is not None for l in lines)
        self.assertEqual((refusals, flags), (3, 2), "\n".join(lines))
        self.assertEqual(self.regex(syslog), refusals)
        self.assertEqual(self.regex(syslog, "flags"), flags)
        self.assertEqual(self.regex(syslog, "aggressive"), refusals + flags)
        self.assertEqual(set(self.regex(syslog, "aggressive", out="ip")), {"127.0.0.51", "127.0.0.52"})
        self.assertEqual(set(self.regex(syslog, out="user")), {"alice"})

    def test_shipped_samples_match_their_failjson_and_the_jail_is_off(self):
        samples = os.path.join(h.REPO, "examples", "fail2ban", "logs", "subproxy-accounts")
        expected = sum(json.loads(l.split(":", 1)[1])["match"] for l in open(samples) if l.startswith("# failJSON:"))
        self.assertEqual(self.regex(samples), expected)
        self.assertEqual(set(self.regex(samples, out="ip")),
                         {"192.0.2.61", "2001:db8:6::1", "192.0.2.63", "192.0.2.68", "192.0.2.69"})
        self.assertEqual(self.regex(samples, "flags"), 1)   # many_addresses, not weak_password
        jail = open(os.path.join(h.REPO, "examples", "fail2ban", "jail.d", "subproxy-accounts.conf")).read()
        self.assertRegex(jail, r"(?m)^enabled\s*=\s*false$")


class WeakPasswords(unittest.TestCase):
    WEAK = "password1"
    STRONG = "h7Gq2Lp9Zx4Rt8Vb1Nc6-qW3e"
    NOTICE = "Your password is weak: change it at https://isp.example/password"

    def test_dictionary_password_flagged_strong_not_and_never_written(self):
        users = {"carol": self.WEAK, "dave": self.STRONG}
        p = accounts_proxy("accounts-passwords", {"passwords": {"min_score": 50, "notice": self.NOTICE}},
                           sasl_dir=None)
        p.config["auth"]["sasl_config_dir"] = h.make_sasldb(os.path.join(p.dir, "sasl-weak"), users=users)
        status = h.free_port()
        p.config["status"] = {"address": "127.0.0.1", "port": status}
        state = p.config["accounts"]["state_file"]
        with p:
            for mech in ("PLAIN", "LOGIN"):
                c, code, lines = login_from(p.port, "127.0.0.1", "carol", self.WEAK, mech)
                self.assertEqual(code, 235, lines)
                self.assertEqual(lines[0], self.NOTICE)  # 235-notice, then the 235
                self.assertEqual(h.send_message(c, "weak-" + mech, sender="carol@example.com")[0], 250)
                c.close()
            c, code, lines = login_from(p.port, "127.0.0.1", "dave", self.STRONG)
            self.assertEqual(code, 235)
            self.assertEqual(lines, ["2.7.0 Authentication successful"])
            c.close()
            self.assertTrue(p.wait_log("sasl_username=dave"))
            self.assertTrue(state_file_settled(state, "flag weak_password"))
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % status, timeout=5) as r:
                metrics = r.read().decode()
            code, out, err = run(p, "-a")
        log = p.log_text()
        self.assertIn("accounts: flagged weak_password: dictionary word, sasl_username=carol", log)
        self.assertNotIn("weak_password: dictionary word, sasl_username=dave", log)
        self.assertIn('subproxy_account_flags_total{reason="weak_password"} 1', metrics)
        self.assertIn('subproxy_account_password_checks_total{result="weak"} 2', metrics)
        self.assertIn('subproxy_account_password_checks_total{result="ok"} 1', metrics)
        self.assertIn('subproxy_account_flags_total{reason="many_destinations"} 0', metrics)
        self.assertRegex(out, r"(?m)^carol weak_password first=\S+ last=\S+ count=0 dictionary word$")
        self.assertNotIn("dave", out)
        report = run(p, "-r", "--flags", "--json")[1] + run(p, "-r", "--flags", "--csv")[1]
        self.assertIn("carol", report)
        # No password, nor its base64 (the AUTH payloads), in the log, the state file or the report.
        with open(state, errors="replace") as f:
            texts = {"log": log, "state file": f.read(), "report": report + out}
        for secret in (self.WEAK, self.STRONG):
            needles = [secret, base64.b64encode(secret.encode()).decode(),
                       base64.b64encode(b"\0carol\0" + secret.encode()).decode(),
                       base64.b64encode(b"\0dave\0" + secret.encode()).decode()]
            for where, text in texts.items():
                for needle in needles:
                    self.assertNotIn(needle, text, "%s holds %r" % (where, needle))
        for path in os.listdir(p.dir):
            full = os.path.join(p.dir, path)
            if os.path.isfile(full) and not path.endswith(".conf"):
                with open(full, "rb") as f:
                    data = f.read()
                self.assertNotIn(self.WEAK.encode(), data, full)
                self.assertNotIn(self.STRONG.encode(), data, full)
