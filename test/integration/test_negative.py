"""What must not work, over real connections: no AUTH, AUTH before TLS, wrong passwords,
STARTTLS injection, SMTP smuggling, a bad MSA certificate, the MSA down or dying.  Each test
checks the customer's reply and that nothing reached the MSA that should not have."""
import re
import socket
import ssl
import time
import unittest
import uuid

import harness as h

_proxy = None


def proxy():
    global _proxy
    if _proxy is None:
        _proxy = h.Proxy(name="negative", limits={"max_errors": 50}).start()
    return _proxy


def tearDownModule():
    if _proxy:
        _proxy.stop()


def msa_connections():
    """How many SMTP sessions the real MSA has seen so far (after its log settled)."""
    time.sleep(0.3)
    return len(re.findall(r"smtpd\[\d+\]: connect from", h.msa().log_text()))


def greeted(port):
    c = h.RawClient(port)
    code, lines = c.reply()
    assert code == 220, (code, lines)
    return c


class BeforeTls(unittest.TestCase):
    def test_ehlo_offers_starttls_not_auth(self):
        c = greeted(proxy().port)
        code, lines = c.cmd("EHLO customer.example")
        self.assertEqual(code, 250)
        self.assertIn("STARTTLS", lines)
        self.assertFalse([l for l in lines if l.upper().startswith("AUTH")])
        c.close()

    def test_auth_mail_rcpt_data_before_tls_get_530(self):
        before = msa_connections()
        c = greeted(proxy().port)
        c.cmd("EHLO customer.example")
        for line in ("AUTH PLAIN AGFsaWNlAGFsaWNlLXNlY3JldA==", "MAIL FROM:<alice@example.com>",
                     "RCPT TO:<bob@example.com>", "DATA"):
            code, lines = c.cmd(line)
            self.assertEqual(code, 530, line)
            # The default teaches the customer whose mail program is set to "no encryption".
            self.assertEqual(lines[0], "5.7.0 Must issue a STARTTLS command first: set your mail program to "
                                       "use port 587 with STARTTLS and your account password")
        c.cmd("QUIT")
        time.sleep(0.3)
        self.assertEqual(msa_connections(), before)
        # The credentials sent in clear were never evaluated.
        self.assertNotIn("authentication", proxy().log_text().split("connect to")[-1])

    def test_xclient_vrfy_etrn_unknown_refused(self):
        c = greeted(proxy().port)
        for line in ("XCLIENT ADDR=192.0.2.1", "XFORWARD NAME=x", "VRFY root", "EXPN all", "ETRN x"):
            self.assertEqual(c.cmd(line)[0], 502, line)
        self.assertEqual(c.cmd("FROB")[0], 502)
        # BDAT's chunk would be read as commands: refuse and hang up (checklist #33).
        c.send("BDAT 12 LAST\r\nMAIL FROM:<x>")
        self.assertEqual(c.reply()[0], 502)
        self.assertEqual(c.reply()[0], 421)
        self.assertTrue(c.closed())


class StartTlsInjection(unittest.TestCase):
    def test_plaintext_pipelined_after_starttls_is_never_run(self):
        c = greeted(proxy().port)
        c.cmd("EHLO customer.example")
        c.send("STARTTLS\r\nEHLO injected.example\r\n")
        code, lines = c.reply()
        self.assertEqual(code, 554)
        self.assertTrue(c.closed())
        self.assertNotIn("250", c.buf.decode(errors="replace"))   # the injected EHLO got no answer
        self.assertTrue(proxy().wait_log("STARTTLS command injection"))

    def test_plaintext_after_220_breaks_the_handshake_not_the_rules(self):
        c = greeted(proxy().port)
        c.cmd("EHLO customer.example")
        self.assertEqual(c.cmd("STARTTLS")[0], 220)
        c.send("MAIL FROM:<evil@example.com>\r\n")     # plaintext where TLS must be
        self.assertTrue(c.closed())
        self.assertNotIn("250", c.buf.decode(errors="replace"))

    def test_state_is_reset_after_starttls(self):
        c = greeted(proxy().port)
        c.cmd("EHLO customer.example")
        c.starttls()
        code, _ = c.cmd("AUTH PLAIN AGFsaWNlAGFsaWNlLXNlY3JldA==")
        self.assertEqual(code, 503)       # no EHLO after TLS yet
        self.assertEqual(c.cmd("STARTTLS")[0], 503)
        c.close()


class Authentication(unittest.TestCase):
    def test_no_auth_gets_530_with_instructions_and_msa_sees_nothing(self):
        before = msa_connections()
        c = greeted(proxy().port)
        c.cmd("EHLO customer.example")
        c.starttls()
        c.cmd("EHLO customer.example")
        code, lines = c.cmd("MAIL FROM:<alice@example.com>")
        self.assertEqual(code, 530)
        self.assertIn("port 587", lines[0])
        self.assertTrue(lines[0].startswith("5.7.0 "))
        self.assertEqual(c.cmd("RCPT TO:<bob@example.com>")[0], 530)
        c.cmd("QUIT")
        time.sleep(0.3)
        self.assertEqual(msa_connections(), before)

    def test_wrong_password_and_unknown_user_look_the_same(self):
        before = msa_connections()
        replies = []
        for user, password in (("alice", "wrong"), ("nosuchuser", "whatever")):
            c = greeted(proxy().port)
            c.cmd("EHLO customer.example")
            c.starttls()
            c.cmd("EHLO customer.example")
            started = time.monotonic()
            replies.append(h.auth(c, "PLAIN", user, password))
            replies[-1] = (replies[-1], round(time.monotonic() - started))
            c.close()
        (first, t1), (second, t2) = replies
        self.assertEqual(first, second)
        self.assertEqual(first[0], 535)
        self.assertTrue(first[1][0].startswith("5.7.8"))
        self.assertEqual(t1, t2)
        self.assertEqual(msa_connections(), before)
        self.assertTrue(proxy().wait_log("SASL PLAIN authentication failed"))
        self.assertNotIn("wrong", proxy().log_text())    # never a password in the log

    def test_one_line_per_failed_password(self):
        """Cyrus logs "Password verification failed" (or "incorrect digest response") as it
        sets the reason our own "authentication failed" line then gives: one line per failure."""
        with h.Proxy(name="one-line", limits={"max_auth_failures": 20, "max_errors": 50}) as p:
            c = greeted(p.port)
            c.cmd("EHLO customer.example")
            c.starttls()
            c.cmd("EHLO customer.example")
            client = "[127.0.0.1]:%d: " % c.sock.getsockname()[1]
            attempts = [("PLAIN", "alice"), ("PLAIN", "nosuchuser"), ("LOGIN", "alice"), ("CRAM-MD5", "alice"),
                        ("CRAM-MD5", "nosuchuser")]
            for mech, user in attempts:
                self.assertEqual(h.auth(c, mech, user, "wrong")[0], 535)
            self.assertEqual(h.auth(c, "CRAM-MD5", "alice", h.USERS["alice"])[0], 235)
            c.cmd("QUIT")
            c.close()
            self.assertTrue(p.wait_log("reason=quit"))
        sasl = [l for l in p.log_text().splitlines() if client in l and "SASL" in l]
        self.assertEqual(len(sasl), len(attempts) + 1, "\n".join(sasl))
        for (mech, user), line in zip(attempts, sasl):
            self.assertRegex(line, r"warning: \[127\.0\.0\.1\]:\d+: SASL %s authentication failed: .*, "
                                   r"sasl_username=%s$" % (mech, user))
        self.assertNotIn("SASL: ", p.log_text())

    def test_rfc4954_corner_cases(self):
        c = greeted(proxy().port)
        c.cmd("EHLO customer.example")
        c.starttls()
        c.cmd("EHLO customer.example")
        self.assertEqual(c.cmd("AUTH GSSAPI")[0], 504)
        self.assertEqual(c.cmd("AUTH PLAIN not*base64")[0], 501)
        self.assertEqual(c.cmd("AUTH CRAM-MD5 AAAA")[0], 501)
        self.assertEqual(c.cmd("AUTH LOGIN")[0], 334)
        self.assertEqual(c.cmd("*")[0], 501)
        # After failures with one mechanism another one still works (fresh SASL state).
        self.assertEqual(h.auth(c, "LOGIN", "alice", "bad")[0], 535)
        self.assertEqual(h.auth(c, "CRAM-MD5", "alice", h.USERS["alice"])[0], 235)
        self.assertEqual(c.cmd("AUTH PLAIN AGFsaWNlAGFsaWNlLXNlY3JldA==")[0], 503)
        c.cmd("QUIT")

    def test_malformed_plain_is_logged_like_a_failure(self):
        c = greeted(proxy().port)
        c.cmd("EHLO customer.example")
        c.starttls()
        c.cmd("EHLO customer.example")
        # authzid "root" != authcid "mallory": no proxy authorization, same 535 as a bad password
        code, lines = c.cmd("AUTH PLAIN cm9vdABtYWxsb3J5AHNlY3JldA==")
        self.assertEqual((code, lines[0][:5]), (535, "5.7.8"))
        c.close()
        self.assertTrue(proxy().wait_log("SASL PLAIN authentication failed: malformed PLAIN message or "
                                         "foreign authorization identity, sasl_username=mallory"))

    def test_too_many_failures_disconnect(self):
        c = greeted(proxy().port)
        c.cmd("EHLO customer.example")
        c.starttls()
        c.cmd("EHLO customer.example")
        self.assertEqual(h.auth(c, "PLAIN", "alice", "x1")[0], 535)
        self.assertEqual(h.auth(c, "PLAIN", "alice", "x2")[0], 535)
        self.assertEqual(h.auth(c, "PLAIN", "alice", "x3")[0], 535)
        self.assertEqual(c.reply()[0], 421)
        self.assertTrue(c.closed())

    def test_sasl_response_limit(self):
        c = greeted(proxy().port)
        c.cmd("EHLO customer.example")
        c.starttls()
        c.cmd("EHLO customer.example")
        self.assertEqual(c.cmd("AUTH LOGIN")[0], 334)
        code, lines = c.cmd("A" * 13000)
        self.assertEqual((code, lines[0][:5]), (500, "5.5.6"))
        c.close()


SMUGGLING = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r.\n", b"\n.\r", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r",
             b"\r\n\0.\r\n", b"\r\r\n.\r\n"]


class TeachingReplies(unittest.TestCase):
    """Issue 7 item 5: every refusal a legacy mail program meets says what to change in it,
    with the right enhanced status code, in one reply line of at most 512 octets."""

    def assertTeaches(self, reply, code, enhanced, *words):
        got, lines = reply
        self.assertEqual(got, code, lines)
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith(enhanced + " "), lines[0])
        self.assertLessEqual(len(("%d %s\r\n" % (code, lines[0])).encode()), 512)
        for word in words:
            self.assertIn(word, lines[0])

    def test_each_refusal_a_legacy_client_meets_teaches(self):
        c = greeted(proxy().port)
        c.cmd("EHLO old-program.example")
        # "No encryption" in the mail program: AUTH or MAIL in plain text.
        for line in ("AUTH LOGIN", "MAIL FROM:<alice@example.com>"):
            self.assertTeaches(c.cmd(line), 530, "5.7.0", "STARTTLS", "port 587", "password")
        c.starttls()
        c.cmd("EHLO old-program.example")
        # Encryption but "no authentication".
        self.assertTeaches(c.cmd("MAIL FROM:<alice@example.com>"), 530, "5.7.0", "port 587", "password")
        # "Secure password authentication" (NTLM) ticked.
        self.assertTeaches(c.cmd("AUTH NTLM"), 504, "5.5.4", "normal password", "PLAIN LOGIN CRAM-MD5")
        # A wrong password.
        self.assertTeaches(h.auth(c, "PLAIN", "alice", "wrong"), 535, "5.7.8",
                           "authentication failed", "password")
        c.close()

    def test_configured_texts_are_used(self):
        p = h.Proxy(name="replies", extra={"replies": {"auth_failed": "Wrong password: see https://isp.example/587",
                                                       "tls_required": "Use port 587 with STARTTLS"}})
        with p:
            c = greeted(p.port)
            c.cmd("EHLO old-program.example")
            self.assertEqual(c.cmd("MAIL FROM:<a@example.com>"), (530, ["5.7.0 Use port 587 with STARTTLS"]))
            c.starttls()
            c.cmd("EHLO old-program.example")
            self.assertEqual(h.auth(c, "PLAIN", "alice", "wrong"),
                             (535, ["5.7.8 Wrong password: see https://isp.example/587"]))
            c.close()


class Smuggling(unittest.TestCase):
    def test_no_sequence_ends_data_or_reaches_the_msa_as_a_second_mail(self):
        with h.FakeMsa() as fake:
            with h.Proxy(name="smuggle", upstream={"port": fake.port, "server_name": "msa.test"}) as p:
                for seq in SMUGGLING:
                    with self.subTest(seq=seq):
                        c = h.login(p.port)
                        mails_before = fake.mails
                        c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                        self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
                        c.send(b"Subject: smuggle\r\n\r\nbody" + seq +
                               b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
                               b"spoofed\r\n.\r\n")
                        code, lines = c.reply()
                        self.assertIn(code, (550, 554), lines)
                        self.assertEqual(fake.mails, mails_before + 1)
                        self.assertFalse([l for l in fake.lines if b"evil@" in l])
                        # The session goes on: a clean message still gets through.
                        c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                        self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
                        c.send("Subject: fine\r\n\r\nok\r\n.\r\n")
                        self.assertEqual(c.reply()[0], 250)
                        c.close()

    def test_smuggling_against_real_postfix_delivers_nothing(self):
        c = h.login(proxy().port)
        before = len(h.msa().messages())
        tag = uuid.uuid4().hex[:8]
        c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
        self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
        c.send(("Subject: smuggle %s\r\n\r\nx\n.\nMAIL FROM:<evil@example.com>\r\n"
                "RCPT TO:<bob@example.com>\r\nDATA\r\nspoofed %s\r\n.\r\n" % (tag, tag)).encode())
        code, lines = c.reply()
        self.assertEqual(code, 550)
        self.assertEqual(lines[0][:5], "5.5.2")
        c.cmd("QUIT")
        time.sleep(1.0)
        self.assertFalse([m for m in h.msa().messages()[before:] if tag.encode() in m[1]])
        self.assertNotIn("evil@example.com", h.msa().log_text())

    def test_normalize_mode_delivers_with_crlf(self):
        with h.FakeMsa() as fake:
            with h.Proxy(name="normalize", upstream={"port": fake.port}, extra={"data_bare_newline": "normalize"}) as p:
                c = h.login(p.port)
                c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
                c.send(b"Subject: n\r\n\r\nline1\nline2\n.\nstill body\r\n.\r\n")
                self.assertEqual(c.reply()[0], 250)
                body = b"".join(fake.lines)
                self.assertIn(b"line1\r\nline2\r\n..\r\nstill body\r\n.\r\n", body)
                c.close()


class Sizes(unittest.TestCase):
    def test_size_parameter_and_body_over_the_limit(self):
        with h.FakeMsa() as fake:
            with h.Proxy(name="size", upstream={"port": fake.port}, limits={"max_message_size": 1000}) as p:
                c = h.login(p.port)
                code, lines = c.cmd("MAIL FROM:<alice@example.com> SIZE=5000")
                self.assertEqual((code, lines[0][:5]), (552, "5.3.4"))
                self.assertEqual(fake.mails, 0)
                c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
                c.send("Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 30 + ".\r\n")
                code, lines = c.reply()
                self.assertEqual((code, lines[0][:5]), (552, "5.3.4"))
                self.assertEqual(fake.dots, 0)     # the MSA never got a terminator
                c.close()

    def test_long_command_line(self):
        c = greeted(proxy().port)
        code, lines = c.cmd("NOOP " + "x" * 3000)
        self.assertEqual((code, lines[0][:5]), (500, "5.5.2"))
        self.assertEqual(c.cmd("NOOP")[0], 250)     # in sync again
        c.close()

    def test_bare_lf_in_command(self):
        c = greeted(proxy().port)
        c.send("NOOP\nQUIT\r\n")
        self.assertEqual(c.reply()[0], 500)
        self.assertEqual(c.cmd("NOOP")[0], 250)     # QUIT was never executed
        c.close()


class UpstreamFaults(unittest.TestCase):
    def auth_reply(self, port):
        c = greeted(port)
        c.cmd("EHLO customer.example")
        c.starttls()
        c.cmd("EHLO customer.example")
        result = h.auth(c, "PLAIN", "alice", h.USERS["alice"])
        c.close()
        return result

    def test_msa_certificate_name_mismatch(self):
        with h.Proxy(name="mismatch", upstream={"server_name": "other.test"}) as p:
            code, lines = self.auth_reply(p.port)
            self.assertEqual(code, 454)
            self.assertTrue(p.wait_log("not trusted"))
            self.assertIn("hostname mismatch", p.log_text())

    def test_msa_certificate_from_unknown_ca(self):
        with h.FakeMsa(cert="wrong") as fake:
            with h.Proxy(name="wrongcert", upstream={"port": fake.port, "server_name": "msa.test"}) as p:
                self.assertEqual(self.auth_reply(p.port)[0], 454)
                self.assertEqual(fake.mails, 0)
                self.assertFalse([l for l in fake.lines if l.startswith(b"XCLIENT")])

    def test_msa_without_starttls_is_never_used_in_plaintext(self):
        with h.FakeMsa(fault="no_starttls") as fake:
            with h.Proxy(name="nostarttls", upstream={"port": fake.port}) as p:
                self.assertEqual(self.auth_reply(p.port)[0], 454)
                self.assertFalse([l for l in fake.lines if l.startswith(b"XCLIENT") or l.startswith(b"AUTH")])
                self.assertTrue(p.wait_log("does not offer STARTTLS"))

    def test_msa_response_injection_after_starttls(self):
        with h.FakeMsa(fault="inject_after_220") as fake:
            with h.Proxy(name="inject", upstream={"port": fake.port}) as p:
                self.assertEqual(self.auth_reply(p.port)[0], 454)
                self.assertTrue(p.wait_log("after its 220 to STARTTLS"))

    def test_shifted_msa_replies_never_reach_data(self):
        # An extra reply to MAIL shifts the pipelined replies: RCPT's 250 lands where DATA's 354
        # is owed.  The customer must get 421, never "250" to DATA (it would then send its body
        # as commands), and the MSA must see no body.
        with h.FakeMsa(fault="extra_reply_after_mail") as fake:
            with h.Proxy(name="desync", upstream={"port": fake.port}) as p:
                c = h.login(p.port)
                c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                codes = [c.reply()[0] for _ in range(3)]
                self.assertEqual(codes, [250, 250, 421])
                self.assertTrue(c.closed())
                self.assertEqual(fake.dots, 0)
                self.assertTrue(p.wait_log("MSA reply out of step"))

    def test_implicit_tls_to_the_msa(self):
        with h.FakeMsa(implicit=True) as fake:
            with h.Proxy(name="implicit-up", upstream={"port": fake.port, "tls": "implicit"}) as p:
                c = h.login(p.port)
                c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
                c.send("Subject: implicit\r\n\r\nhi\r\n.\r\n")
                self.assertEqual(c.reply()[0], 250)
                c.close()
                self.assertFalse([l for l in fake.lines if l.startswith(b"STARTTLS")])
                self.assertTrue(p.wait_log("MSA session ready"))
                self.assertRegex(p.log_text(), r"MSA session ready: .* \(TLSv1\.[23]")

    def test_msa_down(self):
        with h.Proxy(name="down", upstream={"port": h.free_port()}) as p:
            code, lines = self.auth_reply(p.port)
            self.assertEqual(code, 454)
            self.assertTrue(lines[0].startswith("4.7.0"))

    def test_second_host_used_when_first_is_down(self):
        # Nothing listens on 127.0.0.2 (the MSA is bound to 127.0.0.1): refused, next host.
        with h.Proxy(name="fallback", upstream={"host": ["127.0.0.2", "127.0.0.1"]}) as p:
            self.assertEqual(self.auth_reply(p.port)[0], 235)
            # Not silent: one warning naming the host that failed, why, and the next one.
            msa_port = h.msa().port
            self.assertTrue(p.wait_log("MSA session ready"))
            failover = [l for l in p.log_text().splitlines() if "MSA failover" in l]
            self.assertEqual(len(failover), 1, p.log_text())
            self.assertRegex(failover[0], r"^subproxy: warning: \[127\.0\.0\.1\]:\d+: MSA failover: 127\.0\.0\.2:%d "
                                          r"failed: Connection refused; trying the next upstream\.host, "
                                          r"127\.0\.0\.1:%d$" % (msa_port, msa_port))

    def test_msa_dies_after_dot(self):
        with h.FakeMsa(fault="die_after_dot") as fake:
            with h.Proxy(name="dies", upstream={"port": fake.port}) as p:
                c = h.login(p.port)
                c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
                c.send("Subject: doomed\r\n\r\nhi\r\n.\r\n")
                code, lines = c.reply()
                self.assertEqual((code, lines[0][:5]), (451, "4.4.2"))   # never 250, never 5xx
                self.assertEqual(c.reply()[0], 421)
                self.assertTrue(c.closed())

    def test_msa_silent_after_dot_times_out_with_4xx(self):
        with h.FakeMsa(fault="silent_after_dot") as fake:
            with h.Proxy(name="silent", upstream={"port": fake.port, "data_done_timeout": 2}) as p:
                c = h.login(p.port)
                c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
                started = time.monotonic()
                c.send("Subject: slow\r\n\r\nhi\r\n.\r\n")
                code, _ = c.reply()
                self.assertEqual(code, 451)
                self.assertLess(time.monotonic() - started, 10)

    def test_client_vanishing_mid_data_aborts_upstream(self):
        with h.FakeMsa() as fake:
            with h.Proxy(name="vanish", upstream={"port": fake.port}) as p:
                c = h.login(p.port)
                c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
                c.send("Subject: half\r\n\r\npart of a body\r\n")
                time.sleep(0.3)
                c.close()
                time.sleep(0.5)
                self.assertEqual(fake.dots, 0)
                self.assertIn(b"part of a body\r\n", b"".join(fake.lines))


class Listeners(unittest.TestCase):
    def test_implicit_tls_and_ipv6(self):
        port465 = h.free_port()
        port6 = h.free_port6() if socket.has_ipv6 else None
        listen = [{"address": "127.0.0.1", "port": 0}, {"address": "127.0.0.1", "port": port465, "tls": "implicit"}]
        if port6:
            listen.append({"address": "::1", "port": port6})
        p = h.Proxy(name="listeners", listen=listen)
        listen[0]["port"] = p.port
        with p:
            raw = socket.create_connection(("127.0.0.1", port465), timeout=10)
            tls = h.client_tls_context().wrap_socket(raw, server_hostname="proxy.test")
            self.assertTrue(tls.recv(100).startswith(b"220 "))
            tls.sendall(b"EHLO customer.example\r\n")
            data = b""
            while b"\r\n250 " not in data:
                data += tls.recv(4096)
            self.assertIn(b"AUTH PLAIN", data)      # already TLS: AUTH offered at once
            self.assertNotIn(b"STARTTLS", data)
            tls.close()
            if port6:
                c = h.RawClient(port6, host="::1")
                self.assertEqual(c.reply()[0], 220)
                c.close()
                self.assertTrue(p.wait_log("[::1]:"))



class Loops(unittest.TestCase):
    def test_original_destination_without_redirect_is_a_loop(self):
        # host = "original" dials what the customer dialled; a customer that reached us
        # directly dialled the proxy itself, so relaying would loop.
        with h.Proxy(name="loop", upstream={"host": "original"}) as p:
            c = h.RawClient(p.port)
            code, lines = c.reply()
            self.assertEqual((code, lines[0][:5]), (421, "4.3.5"))
            self.assertTrue(c.closed())
            self.assertTrue(p.wait_log("mail loop"))


class Bounds(unittest.TestCase):
    def test_client_that_never_reads_its_replies_cannot_grow_the_proxy(self):
        def rss_kib(pid):
            with open("/proc/%d/status" % pid) as f:
                return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])

        with h.Proxy(name="noread") as p:
            c = greeted(p.port)
            before = rss_kib(p.proc.pid)
            c.sock.settimeout(2)
            chunk = b"NOOP\r\n" * 10000
            sent = 0
            try:
                while sent < 16 * 1024 * 1024:     # the kernel buffers a few MB; we keep pushing
                    sent += c.sock.send(chunk)
            except socket.timeout:
                pass                                # the proxy stopped reading: good
            grown = rss_kib(p.proc.pid) - before
            self.assertLess(grown, 4096, "proxy grew %d KiB for %d bytes of unread NOOPs" % (grown, sent))
            # Nothing was lost: every complete NOOP is answered, in order, once we read.
            c.sock.settimeout(20)
            for _ in range(sent // 6):
                self.assertEqual(c.reply()[0], 250)
            c.close()


if __name__ == "__main__":
    unittest.main()
