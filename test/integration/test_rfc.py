"""Real clients and the RFCs (issue 7, item 3): what mail programs in the wild send and expect,
against the real Postfix MSA (and a FakeMsa where Postfix cannot be made to answer that way)."""
import base64
import os
import signal
import socket
import subprocess
import time
import unittest
import uuid

import harness as h


def tls_ehlo(port):
    """A RawClient after greeting, EHLO, STARTTLS and EHLO again."""
    c = h.RawClient(port)
    assert c.reply()[0] == 220
    c.cmd("EHLO customer.example")
    c.starttls()
    c.cmd("EHLO customer.example")
    return c


def plain(user="alice"):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + h.USERS[user].encode()).decode()


class EmptyChallenge(unittest.TestCase):
    """RFC 4954 §4: an empty server challenge is "334" SP.  AUTH PLAIN without an initial
    response gets one, from our SASL and relayed from the MSA (backend "upstream")."""

    def check(self, proxy):
        c = tls_ehlo(proxy.port)
        c.send("AUTH PLAIN\r\n")
        self.assertEqual(c.raw_line(), b"334 \r\n")
        code, lines = c.cmd(plain())
        self.assertEqual(code, 235, lines)
        c.cmd("QUIT")
        c.close()

    def test_backend_sasl(self):
        with h.Proxy(name="334-sasl") as p:
            self.check(p)

    def test_backend_upstream(self):
        with h.Proxy(name="334-upstream", backend="upstream", login="none") as p:
            self.check(p)


class PathsWithoutBrackets(unittest.TestCase):
    """Postfix's default strict_rfc821_envelopes = no takes paths without angle brackets, and
    old mail programs send them.  The proxy takes what Postfix takes and relays <path>."""

    def test_delivered_through_postfix(self):
        with h.Proxy(name="bare-paths") as p:
            c = h.login(p.port)
            before = len(h.msa().messages())
            subject = "bare paths " + uuid.uuid4().hex[:8]
            for line in ("MAIL FROM:alice@example.com", "RCPT TO:bob@example.com",
                         "RCPT TO: carol@example.com", "RCPT TO: <dave@example.com>"):
                code, lines = c.cmd(line)
                self.assertEqual(code, 250, (line, lines))
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(h.message(subject) + b".\r\n")
            self.assertEqual(c.reply()[0], 250)
            c.cmd("QUIT")
            got = h.delivered_since(before, n=3)
            self.assertEqual(len([m for m in got if subject.encode() in m[1]]), 3)
            self.assertTrue(all(b"Return-Path: <alice@example.com>" in m[1] for m in got))

    def test_relayed_in_canonical_form(self):
        with h.FakeMsa() as fake:
            with h.Proxy(name="bare-canonical", upstream={"port": fake.port}) as p:
                c = h.login(p.port)
                self.assertEqual(c.cmd("MAIL FROM: alice@example.org SIZE=100")[0], 250)
                self.assertEqual(c.cmd("RCPT TO:bob@example.net NOTIFY=NEVER")[0], 250)
                self.assertEqual(c.cmd("RCPT TO: <carol@example.net>")[0], 250)
                self.assertEqual(c.cmd("RSET")[0], 250)
                self.assertEqual(c.cmd("MAIL FROM: <a@example.org>")[0], 250)
                c.cmd("QUIT")
                c.close()
                self.assertIn(b"MAIL FROM:<alice@example.org> SIZE=100\r\n", fake.lines)
                self.assertIn(b"RCPT TO:<bob@example.net> NOTIFY=NEVER\r\n", fake.lines)
                self.assertIn(b"RCPT TO:<carol@example.net>\r\n", fake.lines)
                self.assertIn(b"MAIL FROM:<a@example.org>\r\n", fake.lines)


send_one = h.send_message


class XclientAnswered250(unittest.TestCase):
    """Postfix answers XCLIENT with 220; smtp-sink, Exim and Dovecot may say 250.  Like nginx,
    take both and EHLO again."""

    def test_fake_msa_250(self):
        with h.FakeMsa(xclient_code=250) as fake:
            with h.Proxy(name="xclient-250", upstream={"port": fake.port}) as p:
                c = h.login(p.port)
                code, lines = send_one(c, "xclient 250")
                self.assertEqual(code, 250, lines)
                c.cmd("QUIT")
                c.close()
                verbs = [l.split(b" ")[0].strip() for l in fake.lines]
                x = verbs.index(b"XCLIENT")
                self.assertEqual(verbs[x + 1], b"EHLO")
                self.assertIn(b"LOGIN=alice", fake.lines[x])
                self.assertEqual(fake.mails, 1)

    def test_smtp_sink(self):
        """Postfix's smtp-sink (no TLS: upstream tls = "none", tests only) says 250 to XCLIENT."""
        port = h.free_port()
        sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "127.0.0.1:%d" % port, "10"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self.assertTrue(h.wait_port(port, proc=sink), "smtp-sink did not start")
            with h.Proxy(name="xclient-sink", upstream={"port": port, "tls": "none"}) as p:
                c = h.login(p.port)
                code, lines = send_one(c, "smtp-sink")
                self.assertEqual(code, 250, lines)
                self.assertEqual(c.cmd("QUIT")[0], 221)
                c.close()
                self.assertIn("MSA session ready", p.log_text())
        finally:
            sink.terminate()
            sink.wait(5)


class RefusedBodyBackendUpstream(unittest.TestCase):
    """Backend "upstream": a body the proxy refuses (bare LF) is answered 550 and the customer
    goes on, as in the other modes.  The MSA's DATA is dropped without its terminator and a
    fresh MSA session logs in again with the customer's credentials: nothing of the refused
    body is delivered."""

    def test_goes_on_and_delivers_nothing_refused(self):
        with h.Proxy(name="refused-upstream", backend="upstream", login="none") as p:
            for mech in ("PLAIN", "LOGIN"):
                with self.subTest(mech=mech):
                    c = h.login(p.port, mech=mech)
                    before = len(h.msa().messages())
                    tag = uuid.uuid4().hex[:8]
                    c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                    self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
                    c.send(("Subject: bad-body %s\r\n\r\nbare\nLF %s\r\n.\r\n" % (tag, tag)).encode())
                    code, lines = c.reply()
                    self.assertEqual((code, lines[0][:5]), (550, "5.5.2"))
                    subject = "good-body " + tag
                    code, lines = send_one(c, subject)
                    self.assertEqual(code, 250, lines)
                    self.assertEqual(c.cmd("QUIT")[0], 221)
                    c.close()
                    got = h.delivered_since(before)
                    self.assertIn(subject.encode(), got[0][1])
                    time.sleep(1.0)     # a refused copy would have been delivered by now
                    later = h.msa().messages()[before:]
                    self.assertEqual(len(later), 1)
                    self.assertFalse([m for m in later if b"bad-body" in m[1]])
            self.assertNotIn("closing connection", p.log_text())


class ClientHelloOnStarttlsPort(unittest.TestCase):
    """A customer who ticked "SSL" for port 25 sends a TLS ClientHello at once on the STARTTLS
    listener.  It is served as implicit TLS (220 inside TLS, AUTH, mail delivered), logged as
    such, and is no trap signal, even with pregreet and non_smtp set to refuse and ban."""

    @classmethod
    def setUpClass(cls):
        cls.proxy = h.Proxy(name="tls-detect", extra={
            "trap": {"greet_wait": 1, "pregreet": "reject", "non_smtp": "ban"},
            "guard": {"auth_delay": 0, "ban_threshold": 0, "max_sessions_per_client": 0},
            "access": {"allow": ["127.0.0.44"]},
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()

    def connect(self, source):
        c = h.RawClient.__new__(h.RawClient)
        c.sock = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=15, source_address=(source, 0))
        c.buf = b""
        return c

    def test_implicit_tls_served_and_mail_delivered(self):
        for attempt in range(2):        # the second proves the first was neither banned nor trapped
            c = self.connect("127.0.0.41")
            c.sock = h.client_tls_context().wrap_socket(c.sock, server_hostname="proxy.test")   # at once
            self.assertEqual(c.reply(), (220, ["proxy.test ESMTP"]))
            code, caps = c.cmd("EHLO customer.example")
            self.assertEqual(code, 250)
            self.assertNotIn("STARTTLS", caps)
            self.assertIn("AUTH PLAIN LOGIN CRAM-MD5", caps)
            self.assertEqual(c.cmd("AUTH PLAIN " + plain())[0], 235)
            before = len(h.msa().messages())
            subject = "ssl on 25 " + uuid.uuid4().hex[:8]
            self.assertEqual(send_one(c, subject)[0], 250)
            self.assertEqual(c.cmd("QUIT")[0], 221)
            c.close()
            self.assertIn(subject.encode(), h.delivered_since(before)[0][1])
        mine = [l for l in self.proxy.log_text().splitlines() if "[127.0.0.41]:" in l]
        self.assertEqual(len([l for l in mine if "TLS ClientHello on a STARTTLS listener: serving implicit TLS" in l]),
                         2, mine)
        self.assertFalse([l for l in mine if "trap: signal=" in l])

    def test_allow_listed_client_too(self):
        c = self.connect("127.0.0.44")
        c.sock = h.client_tls_context().wrap_socket(c.sock, server_hostname="proxy.test")
        self.assertEqual(c.reply(), (220, ["proxy.test ESMTP"]))
        self.assertEqual(c.cmd("EHLO customer.example")[0], 250)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.close()

    def test_plain_client_still_greeted(self):
        c = self.connect("127.0.0.42")
        self.assertEqual(c.reply(), (220, ["proxy.test ESMTP", "proxy.test ESMTP"]))   # teaser, then the 220
        c.cmd("EHLO customer.example")
        c.starttls()
        c.cmd("EHLO customer.example")
        self.assertEqual(h.auth(c, "PLAIN", "alice", h.USERS["alice"])[0], 235)
        c.cmd("QUIT")
        c.close()

    def test_text_before_the_greeting_is_still_pregreet(self):
        c = self.connect("127.0.0.43")
        c.send("EHLO early.example\r\n")
        self.assertTrue(c.closed())
        self.assertIn(b"554 5.7.1 proxy.test Error: protocol error: talked before the greeting", c.buf)
        c.close()
        self.assertTrue(self.proxy.wait_log("[127.0.0.43]"))
        self.assertTrue(self.proxy.wait_log("trap: signal=pregreet"))
        # HTTP is text too, but it says what it is: non_smtp (here banned), not pregreet.
        c = self.connect("127.0.0.45")
        c.send("GET / HTTP/1.1\r\nHost: proxy.test\r\n\r\n")
        self.assertTrue(c.closed())
        self.assertIn(b"554 5.7.1 proxy.test Error: this is an SMTP server", c.buf)
        c.close()
        self.assertTrue(self.proxy.wait_log("[127.0.0.45]:"))
        self.assertTrue(self.proxy.wait_log("ban: trap signal non_smtp from 127.0.0.45"))
        mine = [l for l in self.proxy.log_text().splitlines() if "[127.0.0.45]:" in l and "trap: signal=" in l]
        self.assertEqual(len(mine), 1, mine)
        self.assertIn("trap: signal=non_smtp action=ban ", mine[0])


def ehlo_before_auth(port):
    """The EHLO keywords after STARTTLS and before AUTH."""
    c = tls_ehlo(port)
    code, lines = c.cmd("EHLO customer.example")
    c.cmd("QUIT")
    c.close()
    assert code == 250, code
    return lines[1:]


class MsaCapabilitiesBeforeAuth(unittest.TestCase):
    """Mail programs that read EHLO once, before AUTH, must see what the MSA takes: SIZE the
    smaller of ours and the MSA's, 8BITMIME/SMTPUTF8/DSN only if the MSA has them.  The proxy
    probes the MSA (start, reload, timer) and learns from every MSA session."""

    def test_real_postfix(self):
        # Postfix: message_size_limit 52428800 (test/msa/postfix-msa.sh), SMTPUTF8 (Debian's
        # smtputf8_enable = yes), DSN, 8BITMIME.  Ours is larger, so the MSA's SIZE wins.
        with h.Proxy(name="caps-postfix", limits={"max_message_size": 100000000}) as p:
            self.assertTrue(p.wait_log("MSA capabilities learned from probe of 127.0.0.1:%d" % h.msa().port))
            caps = ehlo_before_auth(p.port)
            for keyword in ("SIZE 52428800", "8BITMIME", "SMTPUTF8", "DSN", "PIPELINING"):
                self.assertIn(keyword, caps)
            self.assertNotIn("SIZE 100000000", caps)
            self.assertNotIn("CHUNKING", caps)
            # The probe: EHLO, STARTTLS, EHLO, QUIT, nothing else (Postfix's disconnect line).
            self.assertRegex(h.msa().log_text(), r"disconnect from \S+ ehlo=2 starttls=1 quit=1 commands=4\n")

            # SMTPUTF8 and DSN parameters are relayed, and an SMTPUTF8 message is delivered.
            c = h.login(p.port)
            before = len(h.msa().messages())
            tag = uuid.uuid4().hex[:8]
            for line in ("MAIL FROM:<alice@example.com> SMTPUTF8 RET=HDRS ENVID=env" + tag,
                         "RCPT TO:<j\u00f6rg.%s@example.com>" % tag,
                         "RCPT TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.com"):
                code, lines = c.cmd(line)
                self.assertEqual(code, 250, (line, lines))
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(("From: alice@example.com\r\nTo: j\u00f6rg.%s@example.com\r\n"
                    "Subject: gr\u00fc\u00dfe %s\r\n\r\nUTF-8 body \u00e4\u00f6\u00fc\r\n.\r\n" % (tag, tag)).encode())
            self.assertEqual(c.reply()[0], 250)
            c.cmd("QUIT")
            # Both copies, and the success notification NOTIFY=SUCCESS asked for, which carries
            # the ENVID and (RET=HDRS) the headers only.
            got = h.delivered_since(before, n=3)
            copies = [m for m in got if b"UTF-8 body" in m[1]]
            self.assertEqual(len(copies), 2)
            self.assertTrue(all(("gr\u00fc\u00dfe " + tag).encode() in m[1] for m in copies))
            reports = [m for m in got if ("Original-Envelope-Id: env" + tag).encode() in m[1]]
            self.assertEqual(len(reports), 1)
            self.assertNotIn(b"UTF-8 body", reports[0][1])
            self.assertIn("to=<j\u00f6rg.%s@example.com>" % tag, h.msa().log_text())

    def test_fake_msa_probe_reload_timer_and_sessions(self):
        dead = h.free_port()
        with h.FakeMsa(caps=["PIPELINING", "SIZE 1000000", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"]) as fake:
            p = h.Proxy(name="caps-fake", upstream={"port": dead, "probe_interval": 1})
            with p:
                # Nothing answers: today's behaviour, and the failure is logged once.
                self.assertTrue(p.wait_log("MSA capability probe failed"))
                time.sleep(2.5)         # two more probes on the timer
                self.assertEqual(p.log_text().count("MSA capability probe failed"), 1)
                caps = ehlo_before_auth(p.port)
                self.assertIn("SIZE 52428800", caps)
                self.assertIn("8BITMIME", caps)
                self.assertNotIn("SMTPUTF8", caps)

                # SIGHUP with the MSA's real port: probed at reload.
                p.config["upstream"]["port"] = fake.port
                p.write_config()
                p.proc.send_signal(signal.SIGHUP)
                self.assertTrue(p.wait_log("MSA capabilities learned from probe of 127.0.0.1:%d" % fake.port))
                caps = ehlo_before_auth(p.port)
                self.assertIn("SIZE 1000000", caps)
                self.assertIn("SMTPUTF8", caps)
                self.assertIn("DSN", caps)
                self.assertNotIn("8BITMIME", caps)
                # A probe is connect, EHLO, STARTTLS, EHLO, QUIT: no XCLIENT, no AUTH, no MAIL.
                verbs = {l.split(b" ")[0].strip().upper() for l in fake.lines}
                self.assertEqual(verbs, {b"EHLO", b"STARTTLS", b"QUIT"})
                quits = fake.lines.count(b"QUIT\r\n")
                time.sleep(2.5)         # the timer probes again
                self.assertGreaterEqual(fake.lines.count(b"QUIT\r\n"), quits + 2)
                self.assertEqual(p.log_text().count("MSA capabilities learned"), 1)  # once per change

                # The MSA changes; a customer's own MSA session teaches it at once.
                p.config["upstream"]["probe_interval"] = 0
                p.write_config()
                quits = fake.lines.count(b"QUIT\r\n")
                p.proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 10     # the reload's own probe is over
                while fake.lines.count(b"QUIT\r\n") == quits and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertGreater(fake.lines.count(b"QUIT\r\n"), quits)
                fake.caps = ["PIPELINING", "SIZE 2000000", "8BITMIME", "ENHANCEDSTATUSCODES"]
                c = h.login(p.port)
                c.cmd("QUIT")
                c.close()
                self.assertTrue(p.wait_log("MSA capabilities learned from MSA session with 127.0.0.1:%d" % fake.port))
                caps = ehlo_before_auth(p.port)
                self.assertIn("SIZE 2000000", caps)
                self.assertIn("8BITMIME", caps)
                self.assertNotIn("SMTPUTF8", caps)
                self.assertNotIn("DSN", caps)


if __name__ == "__main__":
    unittest.main()
