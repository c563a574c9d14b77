"""DNSBL/DNSWL with a real DNS server on loopback (dnsmasq) serving test zones: reversed-octet
query names, postscreen-style filters, an Exchange-style bitmask, weights and the threshold,
the reply template, 127.255.255.x answers as errors, the TTL cache (queries counted in
dnsmasq's own log), the decision point (MAIL or connect), and that a listed customer who
authenticates correctly still relays by default.  Clients use loopback source addresses
127.0.0.x, so the zone data is keyed on x.0.0.127."""
import os
import signal
import socket
import time
import unittest
import uuid

import harness as h

# client address -> {zone: answer}
RECORDS = {
    "127.0.0.2": {"bl.test": "127.0.0.2"},                            # listed (weight 2)
    "127.0.0.3": {"bl.test": "127.255.255.254"},                      # an error, not a listing
    "127.0.0.4": {"bl.test": "127.0.0.20", "mask.test": "127.0.0.6"},  # outside filter; bitmask hit
    "127.0.0.5": {"bl.test": "127.0.0.3", "mask.test": "127.0.0.4"},   # 2 + 1
    "127.0.0.6": {"bl.test": "127.0.0.2", "wl.test": "127.0.0.2"},     # 2 - 5: allowlisted
    "127.0.0.7": {"bl.test": "127.0.0.11"},                           # listed (cache test)
    "127.0.0.9": {"bl.test": "127.0.0.2"},                            # listed (decision connect)
}

ZONES = [
    {"zone": "bl.test", "name": "testbl", "filter": "127.0.0.[2..11]", "weight": 2,
     "reply": "Blocked: %0 is listed by %1 (%2)"},
    {"zone": "mask.test", "bitmask": 4, "weight": 1},
    {"zone": "wl.test", "weight": -5},
]

_dns = None


class Dnsmasq(h.Dnsmasq):
    """The harness's dnsmasq with the test zones and RECORDS."""

    def __init__(self):
        records = []
        for client, answers in RECORDS.items():
            rev = ".".join(reversed(client.split(".")))
            for zone, answer in answers.items():
                records.append("--host-record=%s.%s,%s" % (rev, zone, answer))
        # Authoritative for the zones: unknown names there are NXDOMAIN.
        super().__init__(records, local_zones=("bl.test", "mask.test", "wl.test"))

    def queries(self, name):
        # evdns randomises the case of query names (0x20); dnsmasq logs them as sent.
        return sum(1 for l in self.queries_log().lower().splitlines() if "query[a] %s from" % name in l)


def dns():
    global _dns
    if _dns is None:
        _dns = Dnsmasq()
    return _dns


def tearDownModule():
    if _dns:
        _dns.stop()


def dnsbl_proxy(name, **overrides):
    conf = {"zones": ZONES, "threshold": 2, "allowlist_threshold": -1,
            "nameserver": "127.0.0.1:%d" % dns().port, "timeout": 3}
    conf.update(overrides)
    return h.Proxy(name=name, extra={"dnsbl": conf})


def connect(port, source):
    c = h.RawClient.__new__(h.RawClient)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    c.buf = b""
    return c


class DecisionAtMail(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proxy = dnsbl_proxy("dnsbl-mail").start()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()

    def mail_reply(self, source):
        c = connect(self.proxy.port, source)
        self.assertEqual(c.reply()[0], 220)
        c.cmd("EHLO bot.example")
        code, lines = c.cmd("MAIL FROM:<spam@example.com>")
        c.cmd("QUIT")
        return code, lines

    def test_listed_bot_gets_the_template_reply_at_mail(self):
        code, lines = self.mail_reply("127.0.0.2")
        self.assertEqual(code, 550)
        self.assertEqual(lines[0], "5.7.1 Blocked: 127.0.0.2 is listed by testbl (bl.test)")
        self.assertGreaterEqual(dns().queries("2.0.0.127.bl.test"), 1)   # reversed octets
        self.assertGreaterEqual(dns().queries("2.0.0.127.mask.test"), 1)
        self.assertTrue(self.proxy.wait_log("[127.0.0.2]:"))
        log = self.proxy.log_text()
        self.assertIn("dnsbl: rank 2 (threshold 2) listed: testbl=127.0.0.2*2 mask.test=- wl.test=-", log)
        self.assertIn("trap: signal=dnsbl action=log", log)

    def test_error_answer_is_not_a_listing(self):
        code, _ = self.mail_reply("127.0.0.3")
        self.assertEqual(code, 530)                      # the ordinary "authenticate" answer
        self.assertTrue(self.proxy.wait_log("127.255.255.254 is an error code (127.255.255.x), not a listing"))

    def test_filter_bitmask_and_weights(self):
        # 127.0.0.20 is outside 127.0.0.[2..11]; 127.0.0.6 has the bitmask's bit 4: rank 1 < 2.
        self.assertEqual(self.mail_reply("127.0.0.4")[0], 530)
        self.assertTrue(self.proxy.wait_log("dnsbl: rank 1 (threshold 2): testbl=- mask.test=127.0.0.6*1"))
        # 2 + 1 = 3 >= 2: listed, with the heavier zone's reply.
        code, lines = self.mail_reply("127.0.0.5")
        self.assertEqual(code, 550)
        self.assertIn("listed by testbl", lines[0])

    def test_dnswl_allowlists(self):
        self.assertEqual(self.mail_reply("127.0.0.6")[0], 530)
        self.assertTrue(self.proxy.wait_log("dnsbl: rank -3 (threshold 2) allowlisted"))

    def test_answers_are_cached_for_their_ttl(self):
        for _ in range(3):
            self.assertEqual(self.mail_reply("127.0.0.7")[0], 550)
        self.assertEqual(dns().queries("7.0.0.127.bl.test"), 1)
        # NXDOMAIN is cached too (dnsbl.negative_ttl).
        self.assertEqual(dns().queries("7.0.0.127.mask.test"), 1)

    def test_listed_customer_who_authenticates_still_relays(self):
        before = len(h.msa().messages())
        subject = "dnsbl customer %s" % uuid.uuid4().hex[:8]
        c = connect(self.proxy.port, "127.0.0.2")
        self.assertEqual(c.reply()[0], 220)
        c.cmd("EHLO customer.example")
        c.starttls()
        c.cmd("EHLO customer.example")
        self.assertEqual(h.auth(c, "PLAIN", "alice", h.USERS["alice"])[0], 235)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.com>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(h.message(subject) + b"\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        c.cmd("QUIT")
        msgs = h.delivered_since(before)
        self.assertTrue(any(subject.encode() in body for _path, body in msgs))


class DecisionAtConnect(unittest.TestCase):
    def test_listed_client_is_refused_at_the_greeting(self):
        with dnsbl_proxy("dnsbl-connect", decision="connect") as p:
            c = connect(p.port, "127.0.0.9")
            code, lines = c.reply()
            self.assertEqual(code, 554)
            self.assertEqual(lines[0], "5.7.1 Blocked: 127.0.0.9 is listed by testbl (bl.test)")
            self.assertTrue(c.closed())
            c = connect(p.port, "127.0.0.8")            # not listed anywhere
            self.assertEqual(c.reply()[0], 220)
            c.close()
            self.assertTrue(p.wait_log("dnsbl: connection refused at connect"))

    def test_block_authenticated_refuses_mail_even_after_auth(self):
        with dnsbl_proxy("dnsbl-strict", block_authenticated=True) as p:
            c = connect(p.port, "127.0.0.2")
            self.assertEqual(c.reply()[0], 220)
            c.cmd("EHLO customer.example")
            c.starttls()
            c.cmd("EHLO customer.example")
            self.assertEqual(h.auth(c, "PLAIN", "alice", h.USERS["alice"])[0], 235)
            code, lines = c.cmd("MAIL FROM:<alice@example.com>")
            self.assertEqual(code, 550)
            self.assertIn("listed by testbl", lines[0])
            c.cmd("QUIT")

    def test_nameserver_down_is_an_error_not_a_listing(self):
        dead = h.free_port()
        with h.Proxy(name="dnsbl-dead", extra={"dnsbl": {"zones": ZONES, "nameserver": "127.0.0.1:%d" % dead,
                                                         "timeout": 1}}) as p:
            started = time.monotonic()
            c = connect(p.port, "127.0.0.2")
            self.assertEqual(c.reply()[0], 220)             # greeted after at most the deadline
            self.assertLess(time.monotonic() - started, 3)
            c.cmd("EHLO bot.example")
            self.assertEqual(c.cmd("MAIL FROM:<a@example.com>")[0], 530)
            c.close()
            self.assertTrue(p.wait_log("dnsbl: zone bl.test:"))


if __name__ == "__main__":
    unittest.main()
