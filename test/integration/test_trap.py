"""The spambot trap over real connections: pregreet (with the 220- teaser), MAIL without AUTH,
fan-out towards many dialled addresses, non-SMTP input (HTTP, a TLS ClientHello on the plain
port), bare newlines; the actions log, tarpit (stuttered, capped), reject and ban; and the
static allow/deny lists with a deny file reloaded by SIGHUP.  Every detection must leave one
stable "trap: signal=..." line naming the client, the dialled address and the HELO."""
import os
import re
import signal
import socket
import time
import unittest

import harness as h


def connect(port, source="127.0.0.1", host="127.0.0.1"):
    """A RawClient from a chosen loopback source address (127.0.0.0/8 is all ours)."""
    c = h.RawClient.__new__(h.RawClient)
    c.sock = socket.create_connection((host, port), timeout=15, source_address=(source, 0))
    c.buf = b""
    return c


def trap_lines(proxy, signal_name):
    return [l for l in proxy.log_text().splitlines() if "trap: signal=%s " % signal_name in l]


TRAP_LINE = re.compile(r"warning: \[(?P<client>[0-9a-f.:]+)\]:(?P<port>\d+): trap: signal=(?P<signal>\w+) "
                       r"action=(?P<action>\w+) dialled=\[(?P<dialled>[0-9a-f.:]+)\]:(?P<dport>\d+) "
                       r"helo=<(?P<helo>[^>]*)> detail=<(?P<detail>.*)>$")


class Pregreet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = h.Proxy(name="pregreet", extra={
            "trap": {"greet_wait": 1, "pregreet": "reject"},
            "access": {"allow": ["127.0.0.20"]},
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()

    def test_talking_after_the_teaser_is_refused_and_logged(self):
        c = connect(self.proxy.port, "127.0.0.22")
        c.sock.settimeout(5)
        teaser = c.sock.recv(100)
        self.assertEqual(teaser, b"220-proxy.test ESMTP\r\n")
        c.send("EHLO bot.example\r\n")     # does not wait for the last greeting line
        code, lines = c.reply()
        self.assertEqual(code, 554)
        self.assertIn("talked before the greeting", lines[0])
        self.assertTrue(c.closed())
        self.assertTrue(self.proxy.wait_log("trap: signal=pregreet"))
        m = TRAP_LINE.search(trap_lines(self.proxy, "pregreet")[-1])
        self.assertTrue(m, trap_lines(self.proxy, "pregreet"))
        self.assertEqual((m["client"], m["action"], m["dialled"], m["dport"]),
                         ("127.0.0.22", "reject", "127.0.0.1", str(self.proxy.port)))
        self.assertEqual(m["detail"], "EHLO bot.example??")

    def test_http_before_the_greeting_is_non_smtp_not_pregreet(self):
        """A web client talks first, as HTTP does: filed for what it is (non_smtp, refused by
        default), with the request line, not as a bot that could not wait (pregreet)."""
        c = connect(self.proxy.port, "127.0.0.23")
        c.sock.settimeout(5)
        self.assertEqual(c.sock.recv(100), b"220-proxy.test ESMTP\r\n")
        c.send("GET /index.html HTTP/1.1\r\nHost: proxy.test\r\n\r\n")
        code, lines = c.reply()
        self.assertEqual(code, 554)
        self.assertIn("this is an SMTP server", lines[0])
        self.assertTrue(c.closed())
        self.assertTrue(self.proxy.wait_log("trap: signal=non_smtp"))
        mine = [l for l in self.proxy.log_text().splitlines() if "[127.0.0.23]" in l and "trap: signal=" in l]
        self.assertEqual(len(mine), 1, mine)
        m = TRAP_LINE.search(mine[0])
        self.assertEqual((m["signal"], m["action"], m["detail"]),
                         ("non_smtp", "reject", "HTTP request: GET /index.html HTTP/1.1"))

    def test_patient_client_gets_the_full_greeting_after_the_wait(self):
        before = len(trap_lines(self.proxy, "pregreet"))
        started = time.monotonic()
        c = connect(self.proxy.port, "127.0.0.21")
        code, lines = c.reply()
        waited = time.monotonic() - started
        self.assertEqual(code, 220)
        self.assertEqual(lines, ["proxy.test ESMTP", "proxy.test ESMTP"])  # teaser + final line
        self.assertGreaterEqual(waited, 0.9)
        self.assertLess(waited, 3)
        self.assertEqual(c.cmd("EHLO customer.example")[0], 250)
        c.cmd("QUIT")
        self.assertEqual(len(trap_lines(self.proxy, "pregreet")), before)
        # The pass is remembered (trap.greet_cache_ttl): no wait next time.
        started = time.monotonic()
        c = connect(self.proxy.port, "127.0.0.21")
        self.assertEqual(c.reply(), (220, ["proxy.test ESMTP"]))
        self.assertLess(time.monotonic() - started, 0.5)
        c.close()
        # A client that failed the test is not remembered as passed.
        c = connect(self.proxy.port, "127.0.0.22")
        c.sock.settimeout(5)
        self.assertEqual(c.sock.recv(100), b"220-proxy.test ESMTP\r\n")
        c.close()

    def test_allow_listed_client_is_exempt(self):
        c = connect(self.proxy.port, source="127.0.0.20")
        code, lines = c.reply()                   # no greet wait for it: greeted at once
        self.assertEqual((code, lines), (220, ["proxy.test ESMTP"]))
        c.send("EHLO early.example\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertTrue(self.proxy.wait_log("[127.0.0.20]:"))
        self.assertIn("access: allowed by access.allow", self.proxy.log_text())
        self.assertFalse([l for l in trap_lines(self.proxy, "pregreet") if "[127.0.0.20]" in l])


class InSessionSignals(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = h.Proxy(name="trap-signals", limits={"max_errors": 50}).start()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()

    def greeted(self, source="127.0.0.1"):
        c = connect(self.proxy.port, source)
        self.assertEqual(c.reply()[0], 220)
        return c

    def test_mail_without_auth_is_logged_with_helo_and_dialled_address(self):
        c = self.greeted("127.0.0.31")
        c.cmd("EHLO bot-31.example")
        code, lines = c.cmd("MAIL FROM:<spam@example.com>")   # no STARTTLS, no AUTH: straight to "the MX"
        self.assertEqual(code, 530)
        self.assertEqual(c.cmd("RCPT TO:<victim@example.net>")[0], 530)
        c.cmd("QUIT")
        self.assertTrue(self.proxy.wait_log("[127.0.0.31]"))
        lines = [l for l in trap_lines(self.proxy, "no_auth") if "[127.0.0.31]" in l]
        self.assertEqual(len(lines), 1, lines)            # once per session, not per command
        m = TRAP_LINE.search(lines[0])
        self.assertEqual((m["action"], m["helo"], m["dialled"]), ("log", "bot-31.example", "127.0.0.1"))
        self.assertEqual(m["detail"], "MAIL FROM:<spam@example.com>")
        # The trap line says what the trap did (action=log: nothing); this one what the MAIL got.
        self.assertRegex(self.proxy.log_text(), r"subproxy: \[127\.0\.0\.31\]:\d+: MAIL without AUTH refused "
                                                r"before STARTTLS, helo=bot-31\.example\n")

    def test_http_request_is_refused(self):
        c = self.greeted("127.0.0.32")
        c.send("GET / HTTP/1.1\r\nHost: proxy.test\r\n\r\n")
        code, lines = c.reply()
        self.assertEqual(code, 554)
        self.assertTrue(c.closed())
        self.assertTrue(self.proxy.wait_log("trap: signal=non_smtp action=reject"))
        line = [l for l in trap_lines(self.proxy, "non_smtp") if "[127.0.0.32]" in l][0]
        self.assertIn("detail=<HTTP request: GET / HTTP/1.1>", line)

    def test_tls_client_hello_on_the_plain_port_is_refused(self):
        c = self.greeted("127.0.0.33")
        c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(32))
        self.assertEqual(c.reply()[0], 554)
        self.assertTrue(c.closed())
        self.assertTrue(self.proxy.wait_log("TLS handshake on the plain port"))

    def test_bare_newline_in_a_command_is_logged(self):
        c = self.greeted("127.0.0.34")
        c.send("EHLO bot.example\nMAIL FROM:<a@example.com>\r\n")
        self.assertEqual(c.reply()[0], 500)
        c.cmd("QUIT")
        self.assertTrue(self.proxy.wait_log("trap: signal=bare_newline action=log"))


class FanOut(unittest.TestCase):
    def test_many_dialled_addresses_from_one_client(self):
        # Without netfilter the "dialled" address is the local address the client reached:
        # one listener per loopback address gives one client many destinations.
        port = h.free_port()
        listen = [{"address": "127.0.0.%d" % i, "port": port} for i in (1, 2, 3, 4)]
        with h.Proxy(name="fanout", port=port, listen=listen,
                     extra={"trap": {"fanout": "reject", "fanout_limit": 2, "fanout_window": 60}}) as p:
            for dest in ("127.0.0.1", "127.0.0.2", "127.0.0.1"):   # two distinct: allowed
                c = connect(port, "127.0.0.41", host=dest)
                self.assertEqual(c.reply()[0], 220)
                c.close()
            c = connect(port, "127.0.0.42", host="127.0.0.3")        # another client: its own count
            self.assertEqual(c.reply()[0], 220)
            c.close()
            c = connect(port, "127.0.0.41", host="127.0.0.3")        # the third distinct
            code, lines = c.reply()
            self.assertEqual(code, 554)
            self.assertIn("too many destinations", lines[0])
            self.assertTrue(c.closed())
            self.assertTrue(p.wait_log("trap: signal=fanout action=reject dialled=[127.0.0.3]:%d" % port))


class Tarpit(unittest.TestCase):
    def test_replies_are_stuttered_and_the_cap_rejects(self):
        with h.Proxy(name="tarpit", extra={"trap": {"no_auth": "tarpit", "tarpit_interval_ms": 100,
                                                    "tarpit_bytes": 8, "tarpit_max": 1}}) as p:
            slow = connect(p.port, "127.0.0.51")
            self.assertEqual(slow.reply()[0], 220)
            slow.cmd("EHLO bot.example")
            started = time.monotonic()
            code, lines = slow.cmd("MAIL FROM:<spam@example.com>")
            took = time.monotonic() - started
            self.assertEqual(code, 530)
            # The 530 to a client without TLS (replies.tls_required, over 100 bytes) at 8 bytes
            # per 100 ms.
            self.assertGreater(took, 0.5)
            self.assertTrue(p.wait_log("trap: signal=no_auth action=tarpit"))

            # The cap (tarpit_max = 1) is taken: the next bot is rejected, not tarpitted.
            other = connect(p.port, "127.0.0.52")
            self.assertEqual(other.reply()[0], 220)
            other.cmd("EHLO bot2.example")
            code, lines = other.cmd("MAIL FROM:<spam@example.com>")
            self.assertEqual(code, 554)
            self.assertTrue(other.closed())
            self.assertTrue(p.wait_log("trap: signal=no_auth action=reject"))

            # Meanwhile an honest client is served at full speed.
            slow.send("MAIL FROM:<spam@example.com>\r\n")     # keeps the tarpit busy
            started = time.monotonic()
            honest = h.login(p.port)
            self.assertLess(time.monotonic() - started, 1.0)
            honest.cmd("QUIT")
            slow.close()


class Ban(unittest.TestCase):
    def test_ban_action_uses_the_guard_ban_list(self):
        guard = {"auth_delay": 0, "ban_threshold": 0, "max_sessions_per_client": 0, "ban_time": 60}
        with h.Proxy(name="trap-ban", extra={"trap": {"no_auth": "ban"}, "guard": guard}) as p:
            c = connect(p.port, "127.0.0.61")
            self.assertEqual(c.reply()[0], 220)
            c.cmd("EHLO bot.example")
            code, lines = c.cmd("MAIL FROM:<spam@example.com>")
            self.assertEqual(code, 554)
            self.assertIn("port 587", lines[0])
            self.assertTrue(c.closed())
            self.assertTrue(p.wait_log("ban: trap signal no_auth from 127.0.0.61"))
            again = connect(p.port, "127.0.0.61")
            code, _ = again.reply()
            self.assertEqual(code, 421)                      # refused by the ban list at accept
            honest = connect(p.port, "127.0.0.62")
            self.assertEqual(honest.reply()[0], 220)         # nobody else is affected
            honest.close()


class AccessLists(unittest.TestCase):
    def test_deny_list_and_deny_file_reloaded_by_sighup(self):
        p = h.Proxy(name="access")
        deny_file = os.path.join(p.dir, "deny.cidr")
        with open(deny_file, "w") as f:
            f.write("# bad neighbours\n127.0.0.72/32\n")
        p.config["access"] = {"deny": ["127.0.0.71"], "allow": ["127.0.0.73"], "deny_file": deny_file}
        with p:
            for source, expected in (("127.0.0.71", 554), ("127.0.0.72", 554), ("127.0.0.74", 220)):
                c = connect(p.port, source)
                code, lines = c.reply()
                self.assertEqual(code, expected, source)
                if code == 554:
                    self.assertIn("access denied for [%s]" % source, lines[0])
                c.close()
            self.assertTrue(p.wait_log("[127.0.0.71]:"))
            self.assertIn("access: denied by access.deny 127.0.0.71/32", p.log_text())
            with open(deny_file, "a") as f:
                f.write("127.0.0.74\n127.0.0.73\n")   # .73 stays allowed: allow beats deny
            p.proc.send_signal(signal.SIGHUP)
            self.assertTrue(p.wait_log("reload done"))
            for source, expected in (("127.0.0.74", 554), ("127.0.0.73", 220)):
                c = connect(p.port, source)
                self.assertEqual(c.reply()[0], expected, source)
                c.close()
            # A bad line keeps the running lists (and says where).
            with open(deny_file, "a") as f:
                f.write("not-an-address\n")
            p.proc.send_signal(signal.SIGHUP)
            self.assertTrue(p.wait_log("deny.cidr:5: not an address or CIDR block"))
            c = connect(p.port, "127.0.0.74")
            self.assertEqual(c.reply()[0], 554)
            c.close()


class Fail2ban(unittest.TestCase):
    """The shipped trap filter and jail, run by the real fail2ban-regex on what subproxy logged."""

    def setUp(self):
        self.filter = h.fail2ban_filter("subproxy-trap")
        if not self.filter:
            self.skipTest("fail2ban-regex not installed (make deps)")
        self.conf = os.path.dirname(os.path.dirname(self.filter))

    def regex(self, logfile, signals=None, out=None):
        return h.fail2ban_regex(logfile, self.filter + ('[signals="%s"]' % signals if signals else ""), out)

    def test_filter_matches_the_trap_lines_subproxy_logged(self):
        with h.Proxy(name="trap-f2b", limits={"max_errors": 50}) as p:
            c = connect(p.port, "127.0.0.41")
            c.reply()
            c.cmd("EHLO bot-41.example")
            self.assertEqual(c.cmd("MAIL FROM:<spam@example.com>")[0], 530)     # no_auth
            c.close()
            c = connect(p.port, "127.0.0.42")
            c.reply()
            c.send("GET / HTTP/1.1\r\n\r\n")                                  # non_smtp
            self.assertEqual(c.reply()[0], 554)
            c.close()
            h.login(p.port).close()                                             # an honest one
            self.assertTrue(p.wait_log("[127.0.0.42]:"))
            self.assertTrue(p.wait_log("signal=non_smtp"))
        syslog = os.path.join(self.conf, "mail.log")
        lines = h.as_syslog(p, syslog)
        detections = sum("trap: signal=" in l for l in lines)
        self.assertEqual(detections, 2)
        self.assertEqual(self.regex(syslog), detections)
        self.assertEqual(self.regex(syslog, signals="non_smtp"), 1)
        self.assertEqual(set(self.regex(syslog, out="ip")), {"127.0.0.41", "127.0.0.42"})

    def test_shipped_samples_match_their_failjson_and_the_jail_is_off(self):
        import json
        samples = os.path.join(h.REPO, "examples", "fail2ban", "logs", "subproxy-trap")
        expected = sum(json.loads(l.split(":", 1)[1])["match"] for l in open(samples) if l.startswith("# failJSON:"))
        self.assertEqual(self.regex(samples), expected)
        self.assertEqual(set(self.regex(samples, out="ip")), {"192.0.2.31", "192.0.2.32", "2001:db8:5::9", "192.0.2.35",
                                                           "192.0.2.37"})
        jail = open(os.path.join(h.REPO, "examples", "fail2ban", "jail.d", "subproxy-trap.conf")).read()
        self.assertRegex(jail, r"(?m)^enabled\s*=\s*false$")


if __name__ == "__main__":
    unittest.main()
