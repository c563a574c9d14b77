"""PROXY protocol (issue 11 item 4), with a real HAProxy and a real Postfix MSA.

In: a real HAProxy (send-proxy-v2, send-proxy) in front of a proxy_protocol listener.  The
customer connects from 127.0.0.7 and HAProxy from 127.0.0.1, so every place that names the
customer (subproxy's log lines, the access list, XCLIENT ADDR at the MSA, the Received header)
must say 127.0.0.7, never HAProxy's 127.0.0.1.  A PROXY header from a source that is not in
trusted_proxies, a malformed one, a missing one and a slow one are closed without a byte and
logged; the v2 LOCAL command (a balancer's health check) is served as the balancer itself.

Out: subproxy sends a v2 header to a second Postfix MSA that runs with
smtpd_upstream_proxy_protocol = haproxy; that MSA logs the customer's address."""
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import unittest
import uuid

import harness as h

CUSTOMER = "127.0.0.7"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, dst, sport, dport, command=0x21):
    block = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return V2_SIGNATURE + bytes([command, 0x11]) + struct.pack("!H", len(block)) + block


def v2_local():
    return V2_SIGNATURE + bytes([0x20, 0x00, 0x00, 0x00])


def connect_from(source, port, host="127.0.0.1", timeout=20):
    """A RawClient whose socket is bound to loopback address `source` (no greeting read)."""
    return h.client_from(source, port, host=host, timeout=timeout)


submit = h.submit


class HAProxy:
    """A real HAProxy in TCP mode: one frontend on loopback, one server (subproxy) behind it."""

    def __init__(self, backend_port, server_options="send-proxy-v2", frontend_port=None, backend_extra=""):
        self.dir = os.path.join(h.workdir(), "haproxy-%s" % uuid.uuid4().hex[:8])
        os.makedirs(self.dir)
        self.port = frontend_port or h.free_port()
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write("""global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend smtp
    bind 127.0.0.1:%d
    default_backend subproxy
backend subproxy
%s
    server s1 127.0.0.1:%d %s
""" % (self.port, backend_extra, backend_port, server_options))
        self.log = open(os.path.join(self.dir, "haproxy.out"), "wb")
        self.proc = None

    def __enter__(self):
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        # -db: foreground, no daemon; -W off: one process we can stop by its pid.
        self.proc = subprocess.Popen([haproxy, "-db", "-f", self.cfg], stdout=self.log, stderr=subprocess.STDOUT)
        if not h.wait_port(self.port, proc=self.proc):
            self.__exit__()
            raise RuntimeError("haproxy did not start: " + open(os.path.join(self.dir, "haproxy.out")).read())
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return False


@unittest.skipUnless(shutil.which("haproxy") or os.path.exists("/usr/sbin/haproxy"), "haproxy not installed")
class ProxyProtocolIn(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        h.msa()
        port = h.free_port()
        listen = [{"address": "127.0.0.1", "port": port, "proxy_protocol": True, "trusted_proxies": ["127.0.0.1"]}]
        cls.proxy = h.Proxy(name="pp-in", port=port, listen=listen, limits={"proxy_header_timeout": 1},
                            extra={"access": {"deny": ["127.0.0.9"]}})
        cls.proxy.start()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()

    def customer_lines(self, since):
        return [l for l in self.proxy.log_text()[since:].splitlines() if ("[%s]:" % CUSTOMER) in l]

    def through_haproxy(self, options, subject):
        since = len(self.proxy.log_text())
        before = len(h.msa().messages())
        with HAProxy(self.proxy.port, options) as lb:
            c = connect_from(CUSTOMER, lb.port)
            self.assertEqual(c.reply()[0], 220)
            self.assertEqual(submit(c, subject), 250)
            dialled = lb.port
        msg = h.delivered_since(before)[0][1].decode(errors="replace")
        self.assertTrue(self.proxy.wait_log("[%s]" % CUSTOMER), self.proxy.log_text())
        self.assertTrue(self.proxy.wait_log("reason=quit"), self.proxy.log_text())
        return since, msg, dialled

    def check_customer_everywhere(self, since, msg, dialled, version):
        log = self.proxy.log_text()[since:]
        # The session's lines carry the customer's address; the dialled address is HAProxy's
        # frontend; the connect line says which balancer vouched for it.
        self.assertRegex(log, r"\[%s\]:\d+: connect to \[127\.0\.0\.1\]:%d via \S+ \(PROXY %s from \[127\.0\.0\.1\]:\d+\)"
                         % (re.escape(CUSTOMER), dialled, version))
        self.assertRegex(log, r"\[%s\]:\d+: SASL PLAIN authentication succeeded, sasl_username=alice" % re.escape(CUSTOMER))
        self.assertRegex(log, r"\[%s\]:\d+: message sasl_username=alice dialled_port=%d status=sent"
                         % (re.escape(CUSTOMER), dialled))
        self.assertRegex(log, r"\[%s\]:\d+: disconnect .*reason=quit" % re.escape(CUSTOMER))
        # Nothing about the submission is logged under HAProxy's address (its readiness probe,
        # a bare connect from 127.0.0.1 through HAProxy, is a session of its own).
        self.assertNotRegex(log, r"\[127\.0\.0\.1\]:\d+: (SASL|message|.*reason=quit)")
        # XCLIENT ADDR: Postfix's Received header names the customer, not HAProxy.
        self.assertRegex(msg, r"Received: from customer\.example \(\S+ \[%s\]\)" % re.escape(CUSTOMER))
        self.assertNotIn("[127.0.0.1])", msg.split("\n\n")[0].split("by msa")[0])

    def test_haproxy_v2_customer_address_in_log_and_xclient(self):
        self.check_customer_everywhere(*self.through_haproxy("send-proxy-v2", "pp v2"), "v2")

    def test_haproxy_v1_customer_address_in_log_and_xclient(self):
        self.check_customer_everywhere(*self.through_haproxy("send-proxy", "pp v1"), "v1")

    def test_access_list_judges_the_customer(self):
        # access.deny lists 127.0.0.9: through HAProxy (127.0.0.1, not listed) it is refused all
        # the same, because the list is applied to the address the header names.
        with HAProxy(self.proxy.port) as lb:
            c = connect_from("127.0.0.9", lb.port)
            code, lines = c.reply()
            self.assertEqual(code, 554, lines)
            self.assertIn("[127.0.0.9]", lines[0])
            c.close()

    def test_untrusted_source_sending_a_header_is_closed(self):
        since = len(self.proxy.log_text())
        # The customer's own machine (not a trusted proxy) claims to be somebody else.
        c = connect_from(CUSTOMER, self.proxy.port)
        c.send(b"PROXY TCP4 203.0.113.9 127.0.0.1 4242 25\r\n")
        self.assertTrue(c.closed(5))
        c.close()
        self.assertEqual(c.buf, b"", "no SMTP reply is owed before the greeting")
        self.assertTrue(self.proxy.wait_log("not in trusted_proxies"))
        log = self.proxy.log_text()[since:]
        self.assertRegex(log, r"\[%s\]:\d+: not in trusted_proxies of listener \S+; connection closed"
                         % re.escape(CUSTOMER))
        self.assertNotIn("203.0.113.9", log)

    def refused(self, data, needle):
        since = len(self.proxy.log_text())
        c = connect_from("127.0.0.1", self.proxy.port)
        if data:
            c.send(data)
        self.assertTrue(c.closed(5))
        c.close()
        self.assertEqual(c.buf, b"")
        self.assertTrue(self.proxy.wait_log(needle), self.proxy.log_text()[since:])
        log = self.proxy.log_text()[since:]
        self.assertRegex(log, r"\[127\.0\.0\.1\]:\d+: %s.*; connection closed" % re.escape(needle))
        self.assertNotIn("connect to", log)
        return log

    def test_malformed_header_is_closed(self):
        self.refused(b"PROXY TCP4 203.0.113.999 127.0.0.1 4242 25\r\n", "malformed PROXY header: bad address")
        self.refused(b"PROXY UNKNOWN\r\n", "malformed PROXY header: v1 UNKNOWN")
        self.refused(V2_SIGNATURE + bytes([0x21, 0x31, 0x00, 0x00]), "malformed PROXY header: v2 PROXY over")

    def test_missing_header_is_closed(self):
        # A customer routed straight to the listener (or a balancer without send-proxy).
        self.refused(b"EHLO customer.example\r\n", "malformed PROXY header: not a PROXY header")

    def test_slow_header_is_closed_at_the_deadline(self):
        started = time.monotonic()
        self.refused(b"PROXY TCP4 192.0.2.1", "incomplete PROXY header")
        self.assertLess(time.monotonic() - started, 4)  # limits.proxy_header_timeout = 1
        self.refused(b"", "no PROXY header")

    def test_header_and_smtp_in_one_segment(self):
        # The customer's EHLO right behind the header must reach the session (nothing over-read).
        c = connect_from("127.0.0.1", self.proxy.port)
        c.send(v2_header(CUSTOMER, "192.0.2.25", 40001, 25) + b"EHLO early.example\r\n")
        codes = [c.reply()[0], c.reply()[0]]
        self.assertEqual(codes[0], 220)
        self.assertIn(codes[1], (250, 554))  # 554 if the trap calls it pregreet; the line was read
        c.close()
        self.assertTrue(self.proxy.wait_log("[%s]:40001: connect to [192.0.2.25]:25" % CUSTOMER))

    def test_haproxy_health_check_is_v2_local(self):
        # HAProxy's own checks on a send-proxy-v2 server carry a LOCAL header; smtpchk wants the
        # 220 and a 250 to its EHLO, so the balancer keeps the gateway in service.
        since = len(self.proxy.log_text())
        with HAProxy(self.proxy.port, "send-proxy-v2 check inter 300ms",
                     backend_extra="    option smtpchk EHLO lb.test") as lb:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proxy.log_text()[since:].count("PROXY v2 LOCAL") < 2:
                time.sleep(0.1)
            with open(os.path.join(lb.dir, "haproxy.out")) as f:
                out = f.read()
        log = self.proxy.log_text()[since:]
        self.assertGreaterEqual(log.count("PROXY v2 LOCAL"), 2, log)
        self.assertNotIn("malformed PROXY header", log)
        self.assertRegex(log, r"\[127\.0\.0\.1\]:\d+: disconnect .*commands=[1-9]")  # it said EHLO
        self.assertNotIn("is DOWN", out)

    def test_shipped_example_is_valid(self):
        r = subprocess.run([shutil.which("haproxy") or "/usr/sbin/haproxy", "-c", "-f",
                            os.path.join(h.REPO, "examples", "haproxy", "haproxy.cfg")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_v2_local_is_served_as_the_balancer(self):
        since = len(self.proxy.log_text())
        c = connect_from("127.0.0.1", self.proxy.port)
        c.send(v2_local())
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.close()
        self.assertTrue(self.proxy.wait_log("PROXY v2 LOCAL"))
        self.assertRegex(self.proxy.log_text()[since:], r"\[127\.0\.0\.1\]:\d+: connect to ")


@unittest.skipUnless(shutil.which("haproxy") or os.path.exists("/usr/sbin/haproxy"), "haproxy not installed")
class ProxyProtocolImplicitTls(unittest.TestCase):
    def test_implicit_tls_behind_haproxy(self):
        # The ClientHello follows the header at once: it must reach OpenSSL untouched.
        h.msa()
        port = h.free_port()
        listen = [{"address": "127.0.0.1", "port": port, "tls": "implicit", "proxy_protocol": True,
                   "trusted_proxies": ["127.0.0.0/30"]}]
        with h.Proxy(name="pp-tls", port=port, listen=listen) as p, HAProxy(port) as lb:
            c = connect_from(CUSTOMER, lb.port)
            c.sock = h.client_tls_context().wrap_socket(c.sock, server_hostname="proxy.test")
            self.assertEqual(c.reply()[0], 220)
            c.cmd("EHLO customer.example")
            self.assertEqual(h.auth(c, "PLAIN", "alice", h.USERS["alice"])[0], 235)
            c.cmd("QUIT")
            c.close()
            self.assertTrue(p.wait_log("[%s]:" % CUSTOMER))


class ProxyProtocolOut(unittest.TestCase):
    """upstream.proxy_protocol: a v2 header to a Postfix MSA with smtpd_upstream_proxy_protocol."""

    @classmethod
    def setUpClass(cls):
        cls.msa = h.PostfixMsa(os.path.join(h.workdir(), "msa-pp"), h.free_port(), h.CERTS)
        cls.addClassCleanup(cls.msa.stop)   # safe after a failed start
        cls.msa.start()
        cls.msa.postconf(smtpd_upstream_proxy_protocol="haproxy")

    def test_msa_receives_the_customers_address(self):
        since = len(self.msa.log_text())
        with h.Proxy(name="pp-out", login="replay", mechanisms=("PLAIN", "LOGIN"),
                     upstream={"port": self.msa.port, "proxy_protocol": True}) as p:
            before = len(self.msa.messages())
            c = connect_from(CUSTOMER, p.port)
            self.assertEqual(c.reply()[0], 220)
            self.assertEqual(submit(c, "pp out"), 250)
            msg = self.msa.wait_messages(before + 1)[before][1].decode(errors="replace")
            self.assertTrue(p.wait_log("reason=quit"))
        log = self.msa.log_text()[since:]
        # Postfix took the address from our header: the session is the customer's, at every step.
        self.assertRegex(log, r"smtpd\[\d+\]: connect from \S+\[%s\]" % re.escape(CUSTOMER))
        self.assertRegex(log, r"client=\S+\[%s\], sasl_method=PLAIN, sasl_username=alice" % re.escape(CUSTOMER))
        self.assertRegex(msg, r"Received: from \S+ \(\S+ \[%s\]\)" % re.escape(CUSTOMER))
        # The capability probe sends LOCAL, which Postfix serves as a connection from us.
        self.assertRegex(log, r"disconnect from \S+\[127\.0\.0\.1\] ehlo=2 starttls=1 quit=1")
        self.assertNotIn("haproxy read", log)
        self.assertNotIn("haproxy", p.log_text().lower())

    def test_without_the_flag_the_msa_refuses(self):
        # The same MSA without a header from us: Postfix drops the connection, and the customer
        # gets a 4xx instead of a relay that would hide who sent the mail.
        with h.Proxy(name="pp-out-off", login="replay", mechanisms=("PLAIN", "LOGIN"),
                     upstream={"port": self.msa.port}) as p:
            c = connect_from(CUSTOMER, p.port)
            self.assertEqual(c.reply()[0], 220)
            c.cmd("EHLO customer.example")
            c.starttls()
            c.cmd("EHLO customer.example")
            code, _ = h.auth(c, "PLAIN", "alice", h.USERS["alice"])
            self.assertNotEqual(code, 235)
            self.assertEqual(code // 100, 4)
            c.close()


if __name__ == "__main__":
    unittest.main()
