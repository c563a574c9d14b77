"""Who the customer is (issue 8 items 5, 6 and 7), against the real Postfix MSA:

- user names with NUL or other control characters are refused (501) before any password check,
  in both backends, and the guard's per-user delays double over every spelling of one account
  ("alice", "ALICE", " alice", "alice@<realm>") instead of starting afresh for each;
- XCLIENT LOGIN carries the canonical identity (what Postfix logs as sasl_username), and a PLAIN
  authorization identity is judged the same on the AUTH line and after a 334;
- XCLIENT values fit Postfix's 255-octet limit (a HELO of 86 '=' is 258 once xtext-encoded),
  an account name that cannot fit is refused at AUTH instead of a 454 for ever, and a refused
  XCLIENT is logged with what the MSA said.

Different loopback source addresses (127.0.0.x) stand for different customers, so that the
per-address count stays at one and only the per-user count can make the delays grow."""
import base64
import os
import re
import socket
import time
import unittest
import uuid

import harness as h

# One 535 delay per failure, doubling: 0.1, 0.2, 0.4, 0.8, 1.6 s.
GUARD = {"auth_delay": 0.1, "auth_delay_max": 10.0, "ban_threshold": 0, "failure_window": 600,
         "ban_time": 600, "max_sessions_per_client": 0}

# An account whose name is 140 octets, 280 once xtext-encoded: too long for XCLIENT LOGIN.
LONG_USER = "f+" * 70


def guarded(name, **kw):
    p = h.Proxy(name=name, limits={"max_auth_failures": 20}, **kw)
    p.config["guard"] = dict(GUARD, state_file=os.path.join(p.dir, "guard.state"))
    return p


def session_from(source, port, helo="customer.example"):
    """A RawClient from loopback address `source`, after EHLO, STARTTLS, EHLO."""
    c = h.RawClient.__new__(h.RawClient)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(20)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    c.sock, c.buf = s, b""
    assert c.reply()[0] == 220
    c.cmd("EHLO " + helo)
    c.starttls()
    c.cmd("EHLO " + helo)
    return c


def timed(c, mech, user, password):
    started = time.monotonic()
    code, lines = h.auth(c, mech, user, password)
    return code, lines, time.monotonic() - started


def b64(data):
    return base64.b64encode(data).decode()


send_message = h.send_message


def msa_client_line(queue_id):
    """The MSA's "client=" log line for the message it queued as `queue_id`."""
    deadline = time.monotonic() + 10
    pattern = re.compile(r"^.* %s: client=.*$" % re.escape(queue_id), re.M)
    while time.monotonic() < deadline:
        m = pattern.search(h.msa().log_text())
        if m:
            return m.group(0)
        time.sleep(0.05)
    return ""


class ControlCharactersAndTheGuard(unittest.TestCase):
    """Item 5: per-user throttle bypass."""

    def test_nul_user_names_refused_before_any_check(self):
        with guarded("ident-nul") as p:
            replies = []
            for i in range(6):
                c = session_from("127.0.0.%d" % (60 + i), p.port)
                # Cyrus would check "alice"; each variant used to be a new name to the guard.
                replies.append(timed(c, "LOGIN", "alice\0x%d" % i, "guess%d" % i))
                c.close()
            for code, lines, took in replies:
                self.assertEqual((code, lines), (501, ["5.5.2 Error: control characters are not allowed in the "
                                                       "user name"]))
                self.assertLess(took, 0.5)       # no password check, nothing to hold back
            self.assertTrue(p.wait_log("SASL LOGIN authentication refused: control characters in the user name, "
                                       "sasl_username=alice?x5"))
            self.assertNotIn("auth penalty", p.log_text())
            # The other places a name is typed: PLAIN authcid and authzid, CRAM-MD5, and a
            # LOGIN password (Cyrus compares passwords as C strings: "secret\0x" is "secret").
            c = session_from("127.0.0.66", p.port)
            code, lines = c.cmd("AUTH PLAIN " + b64(b"\0ali\x01ce\0guess"))
            self.assertEqual((code, lines), (501, ["5.5.2 Error: control characters are not allowed in the "
                                                   "user name"]))
            code, lines = c.cmd("AUTH PLAIN " + b64(b"alice\r\0alice\0guess"))
            self.assertEqual((code, lines), (501, ["5.5.2 Error: control characters are not allowed in the "
                                                   "authorization identity"]))
            self.assertEqual(h.auth(c, "CRAM-MD5", "alice\0x", "guess")[0], 501)
            code, lines = h.auth(c, "LOGIN", "alice", h.USERS["alice"] + "\0anything")
            self.assertEqual((code, lines), (501, ["5.5.2 Error: NUL characters are not allowed in a password"]))
            self.assertEqual(h.auth(c, "LOGIN", "alice", h.USERS["alice"])[0], 235)
            c.close()

    def test_delays_double_over_every_spelling_of_one_account(self):
        with guarded("ident-spell") as p:
            took = []
            for i, spelling in enumerate(["alice", "ALICE", " alice", "alice@proxy.test", "Alice@PROXY.TEST"]):
                c = session_from("127.0.0.%d" % (70 + i), p.port)
                code, _, seconds = timed(c, "LOGIN", spelling, "guess%d" % i)
                self.assertEqual(code, 535)
                took.append(seconds)
                c.close()
            print("\n  535 delays over five spellings of alice from five addresses: %s s"
                  % [round(t, 3) for t in took])
            for seconds, want in zip(took, [0.1, 0.2, 0.4, 0.8, 1.6]):
                self.assertGreaterEqual(seconds, want - 0.02, took)
                self.assertLess(seconds, want + 0.4, took)
            self.assertTrue(p.wait_log("auth penalty: reply delayed 1.600s (1 failures from 127.0.0.74, "
                                       "5 for sasl_username=alice)"))
            # Her right password, spelled with the realm, clears the count of the account.
            c = session_from("127.0.0.75", p.port)
            self.assertEqual(h.auth(c, "PLAIN", "alice@proxy.test", h.USERS["alice"])[0], 235)
            c.close()
            c = session_from("127.0.0.76", p.port)
            code, _, seconds = timed(c, "LOGIN", "ALICE", "guess")
            self.assertEqual(code, 535)
            self.assertLess(seconds, 0.1 + 0.4)
            c.close()

    def test_backend_upstream_refuses_and_counts_alike(self):
        # The MSA's realm is msa.test: auth.sasl_realm tells the proxy which spelling is bare.
        p = guarded("ident-upstream", backend="upstream", login="none", mechanisms=("PLAIN", "LOGIN"))
        p.config["auth"]["sasl_realm"] = "msa.test"
        with p:
            c = session_from("127.0.0.80", p.port)
            code, lines = c.cmd("AUTH LOGIN")
            self.assertEqual(code, 334)            # the MSA's prompt, relayed
            code, _ = c.cmd(b64(b"alice\0x1"))
            self.assertEqual(code, 501)            # ours: not a byte of it went to the MSA
            code, lines, seconds = timed(c, "LOGIN", "alice\0x2", "guess")
            self.assertEqual(code, 501)
            # The next AUTH still works (a fresh MSA session).
            self.assertEqual(h.auth(c, "LOGIN", "alice", h.USERS["alice"])[0], 235)
            c.close()
            took = []
            for i, spelling in enumerate(["alice", "ALICE", "alice@msa.test"]):
                c = session_from("127.0.0.%d" % (81 + i), p.port)
                code, _, seconds = timed(c, "LOGIN", spelling, "guess%d" % i)
                self.assertEqual(code, 535)
                took.append(seconds)
                c.close()
            for seconds, want in zip(took, [0.1, 0.2, 0.4]):
                self.assertGreaterEqual(seconds, want - 0.02, took)
                self.assertLess(seconds, want + 0.5, took)
            self.assertTrue(p.wait_log("3 for sasl_username=alice)"))
            # Log and migration report: the account, not the spelling.
            c = session_from("127.0.0.84", p.port)
            self.assertEqual(h.auth(c, "PLAIN", "alice@msa.test", h.USERS["alice"])[0], 235)
            self.assertEqual(send_message(c, "ident upstream %s" % uuid.uuid4().hex[:8])[0], 250)
            c.cmd("QUIT")
            c.close()
            self.assertTrue(p.wait_log("SASL PLAIN authentication succeeded (verified by the MSA), "
                                       "sasl_username=alice\n"))
            self.assertTrue(p.wait_log("sasl_username=alice reason=quit"))


class OneAccountOneName(unittest.TestCase):
    """Item 6: the MSA sees the canonical identity; authzid judged alike on both paths."""

    def login_and_send(self, p, user, mech="PLAIN"):
        c = session_from("127.0.0.1", p.port)
        code, lines = h.auth(c, mech, user, h.USERS["alice"])
        self.assertEqual(code, 235, lines)
        code, lines = send_message(c, "ident %s %s" % (user, uuid.uuid4().hex[:8]))
        self.assertEqual(code, 250)
        c.cmd("QUIT")
        c.close()
        return msa_client_line(lines[-1].split()[-1])   # "2.0.0 Ok: queued as QUEUEID"

    def test_xclient_login_is_the_name_cyrus_checked_without_the_default_realm(self):
        with h.Proxy(name="ident-xclient") as p:
            for user in ("alice@proxy.test", "alice"):
                line = self.login_and_send(p, user)
                self.assertTrue(line.endswith(", sasl_method=XCLIENT, sasl_username=alice"), line)
            self.assertTrue(p.wait_log("SASL PLAIN authentication succeeded, sasl_username=alice, "
                                       "cyrus_username=alice@proxy.test"))

    def test_explicit_sasl_realm_is_not_sent_either(self):
        # With auth.sasl_realm set Cyrus appends it to a bare name: SASL_USERNAME is
        # "alice@proxy.test" for a customer who typed "alice".
        p = h.Proxy(name="ident-realm")
        p.config["auth"]["sasl_realm"] = "proxy.test"
        with p:
            line = self.login_and_send(p, "alice", mech="LOGIN")
            self.assertTrue(line.endswith(", sasl_method=XCLIENT, sasl_username=alice"), line)

    def check_authzid(self, p):
        c = session_from("127.0.0.1", p.port)
        trailing = b"alice \0alice\0" + h.USERS["alice"].encode()
        self.assertEqual(c.cmd("AUTH PLAIN " + b64(trailing))[0], 535)
        self.assertEqual(c.cmd("AUTH PLAIN")[0], 334)
        self.assertEqual(c.cmd(b64(trailing))[0], 535)    # was 235: Cyrus strips the blank
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>")[0], 530)
        same = b"alice\0alice\0" + h.USERS["alice"].encode()
        self.assertEqual(c.cmd("AUTH PLAIN")[0], 334)
        self.assertEqual(c.cmd(b64(same))[0], 235)
        c.close()

    def test_authzid_judged_alike_on_the_auth_line_and_after_334(self):
        with h.Proxy(name="ident-authzid") as p:
            self.check_authzid(p)

    def test_authzid_judged_alike_with_backend_upstream(self):
        with h.Proxy(name="ident-authzid-up", backend="upstream", login="none") as p:
            self.check_authzid(p)


class XclientWithinPostfixLimits(unittest.TestCase):
    """Item 7: values over 255 octets as sent make Postfix refuse the whole XCLIENT."""

    def test_long_helo_is_cut_and_the_message_delivered(self):
        with h.Proxy(name="ident-helo") as p:
            for helo in ("=" * 86, "h" * 200 + "+" * 60):
                c = session_from("127.0.0.1", p.port, helo=helo)
                code, lines = h.auth(c, "PLAIN", "alice", h.USERS["alice"])
                self.assertEqual(code, 235, lines)    # was 454 for ever
                subject = "ident long helo %s" % uuid.uuid4().hex[:8]
                before = len(h.msa().messages())
                self.assertEqual(send_message(c, subject)[0], 250)
                self.assertIn(subject.encode(), h.delivered_since(before)[-1][1])
                c.cmd("QUIT")
                c.close()
            self.assertNotIn("MSA refused XCLIENT", p.log_text())

    def test_account_name_too_long_for_xclient_refused_at_auth(self):
        users = dict(h.USERS, **{LONG_USER: "long-secret"})
        sasl = h.make_sasldb(os.path.join(h.workdir(), "ident-long-sasl"), users=users)
        with h.Proxy(name="ident-long", sasl_dir=sasl) as p:
            c = session_from("127.0.0.1", p.port)
            code, lines = h.auth(c, "LOGIN", LONG_USER, "long-secret")
            # Was 235 from Cyrus, then "454 mail server unavailable" from every MSA session.
            self.assertEqual((code, lines), (501, ["5.5.2 Error: user name too long"]))
            self.assertEqual(h.auth(c, "PLAIN", "alice", h.USERS["alice"])[0], 235)
            c.close()
        # Replayed credentials carry no XCLIENT: the same name gets through to the MSA's check.
        with h.Proxy(name="ident-long-replay", sasl_dir=sasl, login="replay", mechanisms=("PLAIN", "LOGIN")) as p:
            c = session_from("127.0.0.1", p.port)
            code, lines = h.auth(c, "LOGIN", LONG_USER, "long-secret")
            self.assertEqual(code, 454)      # the proxy said yes; the MSA has no such account
            self.assertTrue(p.wait_log("MSA refused the customer's credentials"))
            c.close()

    def test_refused_xclient_logged_as_the_msa_said_it(self):
        # The shared MSA runs with inet_protocols = ipv4: it refuses an IPv6 XCLIENT ADDR.
        # That is not an smtpd_authorized_xclient_hosts problem, and the log must not say so.
        port = h.free_port6()
        with h.Proxy(name="ident-v6", port=port, listen=[{"address": "::1", "port": port}],
                     wait_host="::1") as p:
            c = h.RawClient(port, host="::1")
            self.assertEqual(c.reply()[0], 220)
            c.cmd("EHLO customer.example")
            c.starttls()
            c.cmd("EHLO customer.example")
            self.assertEqual(h.auth(c, "PLAIN", "alice", h.USERS["alice"])[0], 454)
            c.close()
            # Postfix checks DESTADDR first: "501 5.5.4 Bad DESTADDR syntax: IPV6:::1".
            self.assertTrue(p.wait_log("MSA refused XCLIENT: 501 5.5.4 Bad DESTADDR syntax: IPV6:::1; "
                                       "IPv6 customers need an MSA with inet_protocols = all"))
            self.assertNotIn("smtpd_authorized_xclient_hosts", p.log_text())


if __name__ == "__main__":
    unittest.main()
