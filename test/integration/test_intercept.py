"""End-to-end interception: a customer in its own network namespace dials port 25, iptables /
ip6tables REDIRECT (nat PREROUTING on the host end of a veth pair) hands the connection to
subproxy, which must log the dialled address (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST) and relay
the customer's mail to the MSA with the customer's own address (XCLIENT ADDR).

Everything lives on a veth pair this test creates (10.231.X.0/30, fd00:231:X::/64): no packet
leaves the machine.  Needs root, `ip netns` and the iptables nat table; skips otherwise.
Every namespace, link and rule is removed again in tearDownClass (or when setUpClass fails).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest
import uuid

import harness as h

TIMEOUT = 30              # every subprocess
TAG = "spx-test-%d" % os.getpid()
REDIRECT_PORT = 2525      # a second "dialled" port, redirected to the loop-guard proxy

# The customer: connect, read the greeting, QUIT; print what happened as JSON.
CUSTOMER = r"""
import json, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=10)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        line = f.readline()
        if not line:
            return lines
        lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            return lines
out = {"local": list(s.getsockname()[:2]), "greeting": reply()}
if out["greeting"] and out["greeting"][0].startswith("220"):
    s.sendall(b"QUIT\r\n")
    out["quit"] = reply()
print(json.dumps(out))
"""


def run(argv, check=True):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stdout.strip()))
    return r


def pick_subnet(v4="10.231.%d.", v6="fd00:231:%d::"):
    """A third octet X with the /30 of `v4` % X (and the /64 of `v6` % X) unused on this host."""
    used = run(["ip", "-o", "addr", "show"]).stdout
    start = os.getpid() % 200 + 20
    for i in range(200):
        x = (start + i - 20) % 200 + 20
        if v4 % x not in used and (v6 is None or v6 % x not in used):
            return x
    raise unittest.SkipTest("no free %s0/30 subnet" % (v4 % 0))


class Interception(unittest.TestCase):
    ns = None
    host_if = None
    rules = []          # (tool, spec) actually added, deleted by the same spec
    proxies = []
    msa = None

    # -- set-up and clean-up ----------------------------------------------------------------

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (network namespaces, iptables)")
        for tool in ("ip", "iptables", "ip6tables", "swaks"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest("%s not installed" % tool)
        cls.rules = []
        cls.proxies = []
        try:
            cls._setup()
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def _setup(cls):
        pid = os.getpid()
        x = pick_subnet()
        cls.v4_host, cls.v4_cust = "10.231.%d.1" % x, "10.231.%d.2" % x
        cls.v6_host, cls.v6_cust = "fd00:231:%d::1" % x, "fd00:231:%d::2" % x
        ns = "spx-cust-%d" % pid
        r = run(["ip", "netns", "add", ns], check=False)
        if r.returncode != 0:
            raise unittest.SkipTest("ip netns add failed: " + r.stdout.strip())
        cls.ns = ns
        host_if, peer_if = "spx%dh" % pid, "spx%dn" % pid
        r = run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if], check=False)
        if r.returncode != 0:
            raise unittest.SkipTest("cannot create a veth pair: " + r.stdout.strip())
        cls.host_if = host_if
        for argv in (
                ["ip", "link", "set", peer_if, "netns", ns],
                ["ip", "addr", "add", cls.v4_host + "/30", "dev", host_if],
                ["ip", "-6", "addr", "add", cls.v6_host + "/64", "dev", host_if, "nodad"],
                ["ip", "link", "set", host_if, "up"],
                ["ip", "-n", ns, "link", "set", "lo", "up"],
                ["ip", "-n", ns, "addr", "add", cls.v4_cust + "/30", "dev", peer_if],
                ["ip", "-n", ns, "-6", "addr", "add", cls.v6_cust + "/64", "dev", peer_if, "nodad"],
                ["ip", "-n", ns, "link", "set", peer_if, "up"],
                ["ip", "-n", ns, "route", "add", "default", "via", cls.v4_host],
                ["ip", "-n", ns, "-6", "route", "add", "default", "via", cls.v6_host]):
            run(argv)

        # REDIRECT :25 -> proxy, :2525 -> loop-guard proxy; IPv4 must work, IPv6 may skip.
        # Tried before anything slow is started, so that an unusable nat table skips quickly.
        proxy_port, original_port = h.free_port(), h.free_port()
        cls.nat6_error = None
        for tool in ("iptables", "ip6tables"):
            for dport, target in ((25, proxy_port), (REDIRECT_PORT, original_port)):
                spec = ["PREROUTING", "-i", host_if, "-p", "tcp", "--dport", str(dport),
                        "-m", "comment", "--comment", TAG, "-j", "REDIRECT", "--to-ports", str(target)]
                r = run([tool, "-w", "10", "-t", "nat", "-A"] + spec, check=False)
                if r.returncode != 0:
                    reason = "%s nat REDIRECT unavailable: %s" % (tool, r.stdout.strip())
                    if tool == "iptables":
                        raise unittest.SkipTest(reason)
                    cls.nat6_error = reason
                    break
                cls.rules.append((tool, spec))

        # Our own MSA: the shared one runs with inet_protocols=ipv4, and then Postfix refuses
        # every IPv6 XCLIENT address ("501 5.5.4 Bad ADDR syntax: IPV6:..."), so an IPv6
        # customer could never be handed over.  Same script, dual-stack protocol support.
        cls.msa = h.PostfixMsa(os.path.join(h.workdir(), "msa-intercept"), h.free_port(), h.CERTS)
        cls.msa.start()
        etc = os.path.join(cls.msa.dir, "etc")
        run(["postconf", "-c", etc, "-e", "inet_protocols = all"])
        run(["postfix", "-c", etc, "reload"])

        # The proxy under test (upstream: our MSA on loopback) and one with upstream host
        # "original", whose loop guard must refuse direct connections but not redirected ones.
        listen = lambda port: [{"address": cls.v4_host, "port": port},   # noqa: E731
                               {"address": cls.v6_host, "port": port}]
        cls.proxy = h.Proxy(name="intercept", port=proxy_port, listen=listen(proxy_port),
                            wait_host=cls.v4_host, upstream={"port": cls.msa.port})
        cls.original = h.Proxy(name="intercept-original", port=original_port, listen=listen(original_port),
                               wait_host=cls.v4_host, upstream={"host": "original", "port": 587})

        for p in (cls.proxy, cls.original):
            cls.proxies.append(p)
            p.start()
            if not h.wait_port(p.port, host=cls.v6_host, proc=p.proc):
                raise RuntimeError("subproxy not listening on [%s]:%d:\n%s" % (cls.v6_host, p.port, p.log_text()))

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()

    @classmethod
    def _cleanup(cls):
        errors = []

        def undo(argv):     # every step runs, whatever the one before it did
            try:
                r = run(argv, check=False)
                if r.returncode != 0:
                    errors.append("%s: %s" % (" ".join(argv), r.stdout.strip()))
            except Exception as e:
                errors.append("%s: %s" % (" ".join(argv), e))

        for p in cls.proxies:
            try:
                p.stop()
            except Exception as e:      # keep cleaning up
                errors.append("stop proxy: %s" % e)
        cls.proxies = []
        for tool, spec in reversed(cls.rules):
            undo([tool, "-w", "10", "-t", "nat", "-D"] + spec)
        cls.rules = []
        if cls.msa:
            cls.msa.stop()
            cls.msa = None
        if cls.host_if:
            undo(["ip", "link", "del", cls.host_if])   # takes the peer with it
            cls.host_if = None
        if cls.ns:
            undo(["ip", "netns", "del", cls.ns])
            cls.ns = None
        if errors:
            print("test_intercept cleanup problems:\n  " + "\n  ".join(errors), file=sys.stderr)

    # -- helpers ----------------------------------------------------------------------------

    def family(self, v6):
        if v6 and self.nat6_error:
            self.skipTest(self.nat6_error)
        return (self.v6_host, self.v6_cust) if v6 else (self.v4_host, self.v4_cust)

    def in_ns(self, argv):
        return run(["ip", "netns", "exec", self.ns] + argv, check=False)

    def customer(self, host, port):
        """Connect from the namespace, read the greeting, QUIT: returns the JSON summary."""
        r = self.in_ns([sys.executable, "-c", CUSTOMER, host, str(port)])
        self.assertEqual(r.returncode, 0, r.stdout)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def new_log(self, proxy, offset, needle):
        """The proxy's log after `offset`, once `needle` appeared in it (or after 10 s)."""
        proxy.wait_log(needle)
        return proxy.log_text()[offset:]

    # -- the tests --------------------------------------------------------------------------

    def check_swaks_through_redirect(self, v6):
        host, cust = self.family(v6)
        p = self.proxy
        subject = "intercept %s %s" % ("v6" if v6 else "v4", uuid.uuid4().hex[:10])
        offset = len(p.log_text())
        before = len(self.msa.messages())
        # The customer dials port 25 of its gateway: the address of the veth pair we made.
        r = self.in_ns(["swaks", "--server", ("[%s]" % host) if v6 else host, "--port", "25",
                        "--timeout", "20", "--ehlo", "customer.example", "--tls",
                        "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", h.USERS["alice"],
                        "--from", "alice@example.com", "--to", "bob@example.com",
                        "--header", "Subject: " + subject, "--body", "Hello from the namespace."])
        self.assertEqual(r.returncode, 0, r.stdout + "\nproxy log:\n" + p.log_text()[offset:])

        # subproxy saw the customer's own address and the address/port it dialled (not ours).
        log = self.new_log(p, offset, "status=sent")
        dialled = "[%s]:25" % host
        self.assertRegex(log, r"\[%s\]:\d+: connect to %s via " % (re.escape(cust), re.escape(dialled)),
                         log)
        self.assertNotIn("connect to [%s]:%d" % (host, p.port), log)
        self.assertNotIn("mail loop", log)
        self.assertIn("status=sent", log)

        # The MSA got the message, from alice, with the customer's address (XCLIENT ADDR).
        msgs = self.msa.wait_messages(before + 1, timeout=15)[before:]
        [(_, body)] = [m for m in msgs if subject.encode() in m[1]]
        self.assertIn(b"(Authenticated sender: alice)", body)
        # Received: from customer.example (unknown [10.231.X.2]) / ([IPv6:fd00:231:X::2])
        self.assertRegex(body, rb"Received: from customer\.example \(unknown \[(IPv6:)?%s\]\)"
                         % re.escape(cust).encode())
        m = re.search(rb"\(Postfix\) with E?SMTPS?A? id ([0-9A-Za-z]+)", body)
        self.assertIsNotNone(m, body[:800])
        queue_id = m.group(1).decode()
        maillog = self.msa.log_text()
        self.assertRegex(maillog, r"%s: client=unknown\[%s\]" % (queue_id, re.escape(cust)),
                         "\n".join(l for l in maillog.splitlines() if queue_id in l))

    def test_ipv4_redirected_mail_arrives_with_dialled_and_customer_address(self):
        self.check_swaks_through_redirect(v6=False)

    def test_ipv6_redirected_mail_arrives_with_dialled_and_customer_address(self):
        self.check_swaks_through_redirect(v6=True)

    def check_direct_connection(self, v6):
        """Not redirected (the customer dials the proxy's port itself): the dialled port is ours."""
        host, cust = self.family(v6)
        p = self.proxy
        offset = len(p.log_text())
        out = self.customer(host, p.port)
        self.assertTrue(out["greeting"][0].startswith("220"), out)
        line = "[%s]:%d: connect to [%s]:%d via " % (cust, out["local"][1], host, p.port)
        log = self.new_log(p, offset, line)
        self.assertIn(line, log)
        self.assertNotIn("mail loop", log)

    def test_ipv4_direct_connection_logs_proxy_port(self):
        self.check_direct_connection(v6=False)

    def test_ipv6_direct_connection_logs_proxy_port(self):
        self.check_direct_connection(v6=True)

    def check_loop_guard(self, v6):
        """upstream host "original": redirected sessions are served, direct ones are loops."""
        host, cust = self.family(v6)
        p = self.original
        offset = len(p.log_text())
        out = self.customer(host, REDIRECT_PORT)
        self.assertTrue(out["greeting"][0].startswith("220"), out)
        line = "[%s]:%d: connect to [%s]:%d via " % (cust, out["local"][1], host, REDIRECT_PORT)
        log = self.new_log(p, offset, line)
        self.assertIn(line, log)
        self.assertNotIn("mail loop", log)

        offset = len(p.log_text())
        out = self.customer(host, p.port)
        self.assertTrue(out["greeting"] and out["greeting"][0].startswith("421 4.3.5"), out)
        self.assertIn("mail loop", " ".join(out["greeting"]))
        line = "[%s]:%d: mail loop: dialled address [%s]:%d is this proxy itself" % (
            cust, out["local"][1], host, p.port)
        self.assertIn(line, self.new_log(p, offset, line))

    def test_ipv4_loop_guard_only_for_direct_connections(self):
        self.check_loop_guard(v6=False)

    def test_ipv6_loop_guard_only_for_direct_connections(self):
        self.check_loop_guard(v6=True)


if __name__ == "__main__":
    unittest.main()
