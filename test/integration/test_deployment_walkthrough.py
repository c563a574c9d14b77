"""subproxy(8)'s DEPLOYMENT section, followed literally in network namespaces.

The .EX/.EE blocks of the section are taken from man/subproxy.8 itself, in order, and run (shell
blocks) or written (file blocks) with only the substitutions the section names:

  /etc/subproxy, /var/lib/subproxy,
  /run/subproxy                           -> directories under a temp dir T
  the account "subproxy"                  -> a system account this test creates and removes
  eth1                                    -> the root-namespace end of the customer's veth
  ports 10025, 10465, 9425                -> kept when free, else free ports (in every step)
  upstream msa.isp.example:587            -> the test MSA: 127.0.0.1:<port>, plus server_name
                                             "msa.test" and ca_file (certs/ca.pem), as step 3
                                             says for an IP address / a private CA
  subproxy_hosts (the proxy's addresses)  -> 127.0.0.1: the proxy reaches the MSA over
                                             loopback; the harness MSA (test/msa/postfix-msa.sh)
                                             has smtpd_authorized_xclient_hosts = 127.0.0.0/8,
                                             so the step-6 snippet is checked against the MSA's
                                             settings instead of being installed
  "fullchain.pem", "privkey.pem"          -> copies of certs/proxy.pem and proxy.key in the cwd
  the password saslpasswd2 asks for       -> "secret" (as step 8 uses it), one line on its stdin

Topology: a "customer" namespace with a veth to the root namespace (10.232.X.0/30, its default
route), and an "outside" namespace holding 203.0.113.25 (documentation range), routed from the
root namespace over a second veth, so the address the customer dials exists only inside a
namespace this test made.  The proxy (started literally, as a daemon, by step 5) and the MSA run
in the root namespace.  Step 5's daemon logs to syslog only: it is started in a private mount
namespace whose /dev/log is a datagram socket this test reads.

Needs root, ip netns, iptables/ip6tables nat, adduser, swaks; skips with the reason otherwise.
Everything this test adds (rules by their exact spec, links, namespaces, the account, the
daemon by its pid file) is removed in tearDownClass.
"""
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness as h

TIMEOUT = 30
OUTSIDE = "203.0.113.25"
MAN = os.path.join(h.REPO, "man", "subproxy.8")


def run(argv, check=True, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (argv, r.returncode, r.stdout))
    return r


def deployment_blocks():
    """The .EX/.EE blocks of the DEPLOYMENT section, roff escapes and the page's own strings
    (".ds sa sasl": file names in the source tree) resolved, in order."""
    text = open(MAN).read()
    strings = dict(re.findall(r"^\.ds (\w\w) (.*)$", text, re.M))
    section = text.split("\n.SH DEPLOYMENT\n", 1)[1].split("\n.SH ", 1)[0]
    blocks = re.findall(r"^\.EX\n(.*?)^\.EE$", section, re.S | re.M)
    blocks = [re.sub(r"\\\*\((\w\w)", lambda m: strings[m.group(1)], b) for b in blocks]
    return [b.replace("\\-", "-").replace("\\e", "\\") for b in blocks]


def port_free(port):
    for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.bind((addr, port))
        except OSError:
            return False
    return True


class SyslogSink:
    """A datagram socket standing in for /dev/log; collects the messages."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)         # the daemon writes here after dropping privileges
        self.sock.settimeout(0.2)
        self.lines = []
        self.stopping = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stopping:
            try:
                self.lines.append(self.sock.recv(65536).decode("utf-8", "replace"))
            except socket.timeout:
                continue
            except OSError:
                return

    def text(self):
        return "\n".join(self.lines)

    def wait(self, needle, timeout=10):
        deadline = time.monotonic() + timeout
        while needle not in self.text() and time.monotonic() < deadline:
            time.sleep(0.05)
        return needle in self.text()

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


class DeploymentWalkthrough(unittest.TestCase):
    undo = []           # argv lists, run in reverse order at clean-up
    pid_file = None
    syslog = None

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (network namespaces, iptables, a system account)")
        for tool in ("ip", "iptables", "ip6tables", "swaks", "adduser", "unshare", "saslpasswd2"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest("%s not installed" % tool)
        cls.undo = []
        try:
            cls._setup()
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def _setup(cls):
        pid = os.getpid()
        used = run(["ip", "-o", "addr", "show"]).stdout
        if OUTSIDE in used:
            raise unittest.SkipTest("%s is in use on this host" % OUTSIDE)
        if run(["ip", "route", "show", OUTSIDE + "/32"]).stdout.strip():
            raise unittest.SkipTest("a route to %s exists already" % OUTSIDE)
        x = next((x for x in range(20 + pid % 200, 20 + pid % 200 + 200)
                  if "10.232.%d." % (x % 250) not in used and "10.233.%d." % (x % 250) not in used), None)
        if x is None:
            raise unittest.SkipTest("no free 10.232.X.0/30 subnet")
        x %= 250
        cls.cust_ns, cls.out_ns = "spx-wt-cust-%d" % pid, "spx-wt-out-%d" % pid
        cls.cust_if, cls.out_if = "spxw%dc" % pid, "spxw%do" % pid
        cls.v4_host, cls.v4_cust = "10.232.%d.1" % x, "10.232.%d.2" % x
        o_host, o_ns = "10.233.%d.1" % x, "10.233.%d.2" % x
        for ns in (cls.cust_ns, cls.out_ns):
            r = run(["ip", "netns", "add", ns], check=False)
            if r.returncode != 0:
                raise unittest.SkipTest("ip netns add failed: " + r.stdout.strip())
            cls.undo.append(["ip", "netns", "del", ns])
        for host_if, ns in ((cls.cust_if, cls.cust_ns), (cls.out_if, cls.out_ns)):
            r = run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns], check=False)
            if r.returncode != 0:
                raise unittest.SkipTest("cannot create a veth pair: " + r.stdout.strip())
            cls.undo.append(["ip", "link", "del", host_if])
        for argv in (
                ["ip", "addr", "add", cls.v4_host + "/30", "dev", cls.cust_if],
                ["ip", "link", "set", cls.cust_if, "up"],
                ["ip", "-n", cls.cust_ns, "link", "set", "lo", "up"],
                ["ip", "-n", cls.cust_ns, "addr", "add", cls.v4_cust + "/30", "dev", "eth0"],
                ["ip", "-n", cls.cust_ns, "link", "set", "eth0", "up"],
                ["ip", "-n", cls.cust_ns, "route", "add", "default", "via", cls.v4_host],
                ["ip", "addr", "add", o_host + "/30", "dev", cls.out_if],
                ["ip", "link", "set", cls.out_if, "up"],
                ["ip", "-n", cls.out_ns, "link", "set", "lo", "up"],
                ["ip", "-n", cls.out_ns, "addr", "add", o_ns + "/30", "dev", "eth0"],
                ["ip", "-n", cls.out_ns, "addr", "add", OUTSIDE + "/32", "dev", "eth0"],
                ["ip", "-n", cls.out_ns, "link", "set", "eth0", "up"],
                ["ip", "-n", cls.out_ns, "route", "add", "default", "via", o_host],
                # Goes away with the link.
                ["ip", "route", "add", OUTSIDE + "/32", "via", o_ns, "dev", cls.out_if]):
            run(argv)

        cls.msa = h.msa()
        cls.T = T = tempfile.mkdtemp(prefix="walkthrough.", dir=h.workdir())
        os.chmod(T, 0o755)
        os.makedirs(os.path.join(T, "run"))
        os.makedirs(os.path.join(T, "bin"))
        os.symlink(h.SUBPROXY, os.path.join(T, "bin", "subproxy"))
        cls.cwd = os.path.join(T, "src")
        os.makedirs(os.path.join(cls.cwd, "sasl"))
        shutil.copy(os.path.join(h.CERTS, "proxy.pem"), os.path.join(cls.cwd, "fullchain.pem"))
        shutil.copy(os.path.join(h.CERTS, "proxy.key"), os.path.join(cls.cwd, "privkey.pem"))
        shutil.copy(os.path.join(h.CERTS, "ca.pem"), os.path.join(T, "ca.pem"))
        os.chmod(os.path.join(T, "ca.pem"), 0o644)
        cls.account = "spxwt%d" % (pid % 1000000)
        cls.pid_file = os.path.join(T, "run", "subproxy", "subproxy.pid")
        cls.ports = {}
        for port in (10025, 10465, 9425):
            cls.ports[port] = port if port_free(port) else h.free_port()
        cls.blocks = deployment_blocks()

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()

    @classmethod
    def _cleanup(cls):
        errors = []
        if cls.pid_file and os.path.exists(cls.pid_file):
            try:
                pid = int(open(cls.pid_file).read().strip() or 0)
                if pid and open("/proc/%d/comm" % pid).read().strip() == "subproxy":
                    os.kill(pid, signal.SIGTERM)
                    deadline = time.monotonic() + 10
                    while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
                        time.sleep(0.05)
                    if os.path.exists("/proc/%d" % pid):
                        os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError) as e:
                errors.append("stop daemon: %s" % e)
        for argv in reversed(cls.undo):
            try:
                r = run(argv, check=False)
                if r.returncode != 0 and "does not exist" not in r.stdout and "Bad rule" not in r.stdout:
                    errors.append("%s: %s" % (" ".join(argv), r.stdout.strip()))
            except Exception as e:
                errors.append("%s: %s" % (" ".join(argv), e))
        cls.undo = []
        if cls.syslog:
            cls.syslog.close()
            cls.syslog = None
        if errors:
            print("test_deployment_walkthrough cleanup problems:\n  " + "\n  ".join(errors), file=sys.stderr)

    # -- the documented substitutions ---------------------------------------------------------

    def subst(self, text):
        T = self.T
        text = re.sub(r'(--no-create-home |-g |-o |chgrp |user = ")subproxy\b', r"\g<1>" + self.account, text)
        text = text.replace("/etc/subproxy", T + "/etc/subproxy")
        text = text.replace("/var/lib/subproxy", T + "/var/lib/subproxy")
        text = text.replace("/run/subproxy", T + "/run/subproxy")
        text = re.sub(r"\beth1\b", self.cust_if, text)
        for old, new in self.ports.items():
            text = re.sub(r"\b%d\b" % old, str(new), text)
        text = text.replace('host = "msa.isp.example"; port = 587;',
                            'host = "127.0.0.1"; port = %d; server_name = "msa.test"; ca_file = "%s/ca.pem";'
                            % (self.msa.port, T))
        return text

    def sh(self, block, stdin=None, prefix=(), check=True):
        env = dict(os.environ, PATH=os.path.join(self.T, "bin") + ":" + os.environ.get("PATH", ""))
        r = subprocess.run(list(prefix) + ["sh", "-e", "-c", block], cwd=self.cwd, env=env, input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT,
                           start_new_session=True)      # no controlling tty: saslpasswd2 reads stdin
        if check:
            self.assertEqual(r.returncode, 0, "%s\n---\n%s" % (block, r.stdout))
        return r

    def test_walkthrough(self):
        b = self.blocks
        firsts = [blk.split(None, 1)[0] for blk in b]
        self.assertEqual(firsts, ["adduser", "pwcheck_method:", "install", "hostname", "install", "subproxy",
                                  "subproxy", "submission", "subproxy_hosts", "iptables", "swaks"],
                         "the DEPLOYMENT blocks changed; update this test's step list")
        (certs, sasl_file, sasl_cmds, conf, state_dir, check, start, master_cf, main_cf, firewall,
         swaks) = b

        # 1. Certificates (creates the account: removed at clean-up).
        self.undo.append(["groupdel", self.account])
        self.undo.append(["userdel", self.account])
        self.sh(self.subst(certs))

        # 2. Cyrus SASL: the block shows what the shipped sasl/subproxy.conf says.
        shipped = [l for l in open(os.path.join(h.REPO, "sasl", "subproxy.conf")).read().splitlines()
                   if l.strip() and not l.startswith("#")]
        self.assertEqual(shipped, sasl_file.strip().splitlines())
        with open(os.path.join(self.cwd, "sasl", "subproxy.conf"), "w") as f:
            f.write(self.subst(sasl_file))
        # Not on a terminal, saslpasswd2 reads the password once, as one line, from stdin.
        r = self.sh(self.subst(sasl_cmds), stdin="secret\n")
        self.assertIn("alice@smtp.isp.example", r.stdout)

        # 3. Configuration.
        conf_file = os.path.join(self.T, "etc", "subproxy", "subproxy.conf")
        with open(conf_file, "w") as f:
            # The page's configuration as it stands, but no reverse lookups of the customer's
            # address: this machine's resolver is not on loopback (harness.py).
            f.write(self.subst(conf) + "\nclient_name = { lookup = false; };\n")
        self.sh(self.subst(state_dir))

        # 4. Check (as root: also as the account).
        r = self.sh(self.subst(check))
        self.assertIn("configuration OK", r.stdout)

        # 5. Start, in a private mount namespace whose /dev/log is ours.
        self.__class__.syslog = sink = SyslogSink(os.path.join(self.T, "log.sock"))
        setup = ('R="$0/realdev"; mkdir -p "$R"; mount --rbind /dev "$R"; mount -t tmpfs -o mode=755 spx-dev /dev; '
                 'for n in null zero random urandom; do touch /dev/$n; mount --bind "$R/$n" /dev/$n; done; '
                 'touch /dev/log; mount --bind "$0/log.sock" /dev/log; exec sh -e -c "$1"')
        r = run(["unshare", "--mount", "--propagation", "private", "sh", "-e", "-c", setup, self.T,
                 self.subst(start)], check=False, cwd=self.cwd,
                env=dict(os.environ, PATH=os.path.join(self.T, "bin") + ":" + os.environ.get("PATH", "")))
        self.assertEqual(r.returncode, 0, r.stdout + "\nsyslog:\n" + sink.text())
        self.assertTrue(sink.wait("started; listening on"), sink.text())
        self.assertTrue(sink.wait("running as user " + self.account), sink.text())
        daemon = int(open(self.pid_file).read())
        with open("/proc/%d/status" % daemon) as f:
            uid = re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1)
        self.assertNotEqual(uid, "0")

        # 6. The MSA: the harness MSA implements the snippet, with subproxy_hosts = the proxy's
        # address towards it (127.0.0.1).
        etc = os.path.join(self.msa.dir, "etc")
        msa_conf = lambda key: run(["postconf", "-c", etc, "-h", key]).stdout.strip()   # noqa: E731
        self.assertRegex(main_cf, r"^subproxy_hosts = ")
        for key, value in re.findall(r"-o (\w+)=(\S+)", master_cf):
            if key == "syslog_name":
                continue
            if key == "smtpd_authorized_xclient_hosts":
                self.assertEqual(value, "$subproxy_hosts")
                nets = [ipaddress.ip_network(n.strip()) for n in re.split(r"[ ,]+", msa_conf(key)) if n.strip()]
                self.assertTrue(any(ipaddress.ip_address("127.0.0.1") in n for n in nets), nets)
                continue
            self.assertEqual(msa_conf(key).replace(" ", ""), value.replace(" ", ""), key)

        # 7. Firewall: the rules are deleted again by their exact spec.
        for line in self.subst(firewall).splitlines():
            argv = line.split()
            if argv and argv[0] in ("iptables", "ip6tables") and "-A" in argv:
                argv[argv.index("-A")] = "-D"
                self.undo.append(argv)
        self.sh(self.subst(firewall))

        # 8. Test: the customer dials port 25 of the outside address.
        before = len(self.msa.messages())
        offset = len(sink.text())
        r = self.sh(self.subst(swaks), prefix=["ip", "netns", "exec", self.cust_ns], check=False)
        self.assertEqual(r.returncode, 0, r.stdout + "\nsyslog:\n" + sink.text()[offset:])
        self.assertIn("STARTTLS", r.stdout)
        self.assertRegex(r.stdout, r"(?m)^<~? +235 ")
        self.assertRegex(r.stdout, r"(?m)^<~? +250 .*queued as")
        self.assertTrue(sink.wait("status=sent"), sink.text()[offset:])
        log = sink.text()[offset:]
        self.assertRegex(log, r"\[%s\]:\d+: connect to \[%s\]:25 via " % (re.escape(self.v4_cust), re.escape(OUTSIDE)))
        # Redirected from port 25: the message line says so (the help desk's one grep).
        self.assertRegex(log, r"\]:\d+: message sasl_username=alice dialled_port=25 status=sent queue_id=\w+ "
                              r"from=<alice@isp\.example> ")
        msgs = self.msa.wait_messages(before + 1, timeout=15)[before:]
        bodies = [m for _, m in msgs if b"postmaster@isp.example" in m]
        self.assertEqual(len(bodies), 1, msgs)
        self.assertIn(b"(Authenticated sender: alice)", bodies[0])
        self.assertRegex(bodies[0], rb"\[%s\]" % re.escape(self.v4_cust).encode())

        # Without --auth the MAIL command must get 530.
        noauth = re.sub(r"--auth \S+ --auth-user \S+ --auth-password \S+ ", "", self.subst(swaks))
        self.assertNotIn("--auth", noauth)
        r = self.sh(noauth, prefix=["ip", "netns", "exec", self.cust_ns], check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"(?m)^<~?\*? *530 ")


if __name__ == "__main__":
    unittest.main()
