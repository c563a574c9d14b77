"""The customer's host name by forward-confirmed reverse DNS (issue 11 item 5).

A real DNS server (dnsmasq) on loopback serves the names; clients use loopback source
addresses 127.0.0.x.  What the MSA is told (XCLIENT NAME=) is read where it lands: the real
Postfix's log and Received header for a confirmed name and for one that does not confirm,
a scripted MSA's transcript for [TEMPUNAVAIL] (Postfix logs both failures as "unknown").
A nameserver that never answers shows the bound: the session waits for the name at most
client_name.timeout_ms, and only when the MSA session opens."""
import re
import socket
import time
import unittest

import harness as h

RECORDS = [
    "--host-record=customer.test,127.0.0.7",            # PTR and A agree: confirmed
    "--ptr-record=8.0.0.127.in-addr.arpa,liar.test",    # PTR names liar.test ...
    "--host-record=liar.test,127.0.0.99",               # ... which is somebody else
]                                                       # 127.0.0.9: no PTR at all


def submit(source, port, subject):
    c = h.client_from(source, port, timeout=20)
    assert c.reply()[0] == 220
    return h.submit(c, subject)


class ClientName(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.msa()
        cls.dns = h.Dnsmasq(RECORDS, local_zones=("test", "0.0.127.in-addr.arpa"))
        cls.addClassCleanup(cls.dns.stop)   # also when the proxy below fails to start
        cls.proxy = h.Proxy(name="fcrdns", extra={"client_name": {
            "lookup": True, "timeout_ms": 3000, "nameserver": ["127.0.0.1:%d" % cls.dns.port]}})
        cls.proxy.start()
        cls.addClassCleanup(cls.proxy.stop)

    def submitted(self, source, subject):
        before = len(h.msa().messages())
        self.assertEqual(submit(source, self.proxy.port, subject), 250)
        msg = h.delivered_since(before)[0][1].decode(errors="replace")
        queue_id = re.search(r"with ESMTPSA id (\w+)", msg).group(1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "%s: client=" % queue_id not in h.msa().log_text():
            time.sleep(0.05)
        line = re.search(r"%s: client=(\S+), sasl" % queue_id, h.msa().log_text()).group(1)
        return msg, line

    def test_confirmed_name_in_log_and_xclient(self):
        msg, client = self.submitted("127.0.0.7", "fcrdns confirmed")
        self.assertTrue(self.proxy.wait_log("[127.0.0.7]"))
        self.assertRegex(self.proxy.log_text(), r"\[127\.0\.0\.7\]:\d+: client name customer\.test \(forward-confirmed\)")
        self.assertEqual(client, "customer.test[127.0.0.7]")   # XCLIENT NAME=customer.test
        self.assertRegex(msg, r"Received: from customer\.example \(customer\.test \[127\.0\.0\.7\]\)")
        # Both halves were asked (dnsmasq logs the queries as evdns sent them, 0x20 case).
        log = self.dns.queries_log().lower()
        self.assertIn("query[ptr] 7.0.0.127.in-addr.arpa", log)
        self.assertIn("query[a] customer.test", log)

    def test_ptr_that_does_not_confirm_is_unavailable(self):
        msg, client = self.submitted("127.0.0.8", "fcrdns liar")
        self.assertRegex(self.proxy.log_text(), r"\[127\.0\.0\.8\]:\d+: client name unknown \[UNAVAILABLE\]: "
                                                r"liar\.test does not resolve to the address")
        self.assertEqual(client, "unknown[127.0.0.8]")
        self.assertNotIn("liar.test", msg)

    def test_no_ptr_is_unavailable(self):
        _, client = self.submitted("127.0.0.9", "fcrdns none")
        self.assertRegex(self.proxy.log_text(), r"\[127\.0\.0\.9\]:\d+: client name unknown \[UNAVAILABLE\]: no PTR record")
        self.assertEqual(client, "unknown[127.0.0.9]")


class SilentNameserver(unittest.TestCase):
    """A nameserver that takes the queries and never answers: [TEMPUNAVAIL] at the deadline."""

    def test_timeout_is_tempunavail_and_bounded(self):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        timeout_ms = 1500
        with h.FakeMsa() as msa, h.Proxy(name="fcrdns-silent", upstream={"port": msa.port}, extra={"client_name": {
                "lookup": True, "timeout_ms": timeout_ms, "nameserver": ["127.0.0.1:%d" % silent.getsockname()[1]]}}) as p:
            started = time.monotonic()
            c = h.client_from("127.0.0.7", p.port, timeout=20)
            self.assertEqual(c.reply()[0], 220)
            greeted = time.monotonic() - started
            c.cmd("EHLO customer.example")
            c.starttls()
            c.cmd("EHLO customer.example")
            code, text = h.auth(c, "PLAIN", "alice", h.USERS["alice"])
            authenticated = time.monotonic() - started
            self.assertEqual(code, 235, text)
            c.cmd("QUIT")
            c.close()
            self.assertTrue(p.wait_log("client name unknown"))
            log = p.log_text()
        silent.close()
        # The greeting does not wait for DNS; the MSA session does, up to the deadline, so
        # that XCLIENT carries the answer.
        self.assertLess(greeted, 1.0)
        self.assertGreaterEqual(authenticated, timeout_ms / 1000.0 - 0.05)
        self.assertLess(authenticated, timeout_ms / 1000.0 + 3)
        self.assertRegex(log, r"\[127\.0\.0\.7\]:\d+: client name unknown \[TEMPUNAVAIL\]: "
                              r"no answer within client_name\.timeout_ms")
        xclient = [l for l in msa.lines if l.startswith(b"XCLIENT")]
        self.assertTrue(any(b"NAME=[TEMPUNAVAIL]" in l for l in xclient), xclient)

    def test_lookup_off_sends_unavailable_and_asks_nobody(self):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        silent.settimeout(0.5)
        with h.FakeMsa() as msa, h.Proxy(name="fcrdns-off", upstream={"port": msa.port}, extra={"client_name": {
                "lookup": False, "nameserver": ["127.0.0.1:%d" % silent.getsockname()[1]]}}) as p:
            started = time.monotonic()
            c = h.login(p.port)
            self.assertLess(time.monotonic() - started, 1.5)
            c.cmd("QUIT")
            c.close()
        with self.assertRaises(socket.timeout):
            silent.recv(512)   # not a single query
        silent.close()
        self.assertNotIn("client name", p.log_text())
        xclient = [l for l in msa.lines if l.startswith(b"XCLIENT")]
        self.assertTrue(any(b"NAME=[UNAVAILABLE]" in l for l in xclient), xclient)


if __name__ == "__main__":
    unittest.main()
