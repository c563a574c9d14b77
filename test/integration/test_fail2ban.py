"""The shipped fail2ban jails, filter and FORWARD action, run by a real fail2ban-server.

Jails: examples/fail2ban/jail.d/*.conf must start as shipped on a Debian 12 without rsyslog
(backend = systemd), which the old `logpath = %(syslog_mail)s` jails did not.

End to end, everything inside network namespaces this test creates:

    bot     10.77.1.2  fd77:1::2, fd77:1::3 (same /64)  \\
    honest  10.77.2.2  fd77:2::2                          >  gw: subproxy, fail2ban-server,
    remote  10.77.3.2  fd77:3::2  (a TCP service)       /       REDIRECT :25 -> subproxy

The gateway namespace routes between the three (its FORWARD chain is what the bot uses to
reach "the Internet", here the remote namespace) and redirects port 25 to subproxy.  A real
fail2ban-server runs inside it with a private socket, pid file, database and configuration
directory holding the shipped filter.d, action.d and jail.d files unchanged, plus one
test-only override: backend = polling on subproxy's own log_file (the test has no journald
for subproxy; the file has the RFC 3339 time stamps fail2ban reads) and bantime = 5 s.

The honest legacy customer sends once without AUTH (IPv4 and IPv6) and is not banned.  The
bot sends MAIL without AUTH five times over IPv4 (jail subproxy-noauth) and HTTP once over IPv6
(jail subproxy-trap): it is cut off in FORWARD, IPv4 and IPv6 (its whole /64), so it cannot
reach the remote service while the honest customer still can, and is let through again once
the ban time is over.  Needs root, ip netns, iptables/ip6tables and fail2ban; skips otherwise.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import harness as h

EX = os.path.join(h.REPO, "examples", "fail2ban")
TIMEOUT = 30
BANTIME = 5
REMOTE_PORT = 7777
PROXY_PORT = 10025

NETS = {   # namespace suffix -> (gateway v4, peer v4, gateway v6, peer v6)
    "bot": ("10.77.1.1", "10.77.1.2", "fd77:1::1", "fd77:1::2"),
    "hon": ("10.77.2.1", "10.77.2.2", "fd77:2::1", "fd77:2::2"),
    "rem": ("10.77.3.1", "10.77.3.2", "fd77:3::1", "fd77:3::2"),
}
BOT_V6_SIBLING = "fd77:1::3"     # same /64 as the bot: the IPv6 ban covers it too

# Runs in a customer namespace.  "probe HOST PORT [SRC]": exit 0 when a TCP connection to
# HOST:PORT succeeds within 3 s.  "smtp HOST WHAT [SRC]": one session to port 25 that does WHAT
# ("mail": EHLO, MAIL without AUTH, QUIT; "http": an HTTP request); prints the reply codes.
CLIENT = r"""
import socket, sys
mode, host = sys.argv[1], sys.argv[2]
if mode == "probe":
    src = (sys.argv[4], 0) if len(sys.argv) > 4 else None
    try:
        socket.create_connection((host, int(sys.argv[3])), timeout=3, source_address=src).close()
    except OSError as e:
        print(e); sys.exit(1)
    sys.exit(0)
src = (sys.argv[4], 0) if len(sys.argv) > 4 else None
s = socket.create_connection((host, 25), timeout=10, source_address=src)
f = s.makefile("rb")
def code():
    while True:
        line = f.readline()
        if len(line) < 4 or line[3:4] != b"-":
            return line[:3].decode()
codes = [code()]
if sys.argv[3] == "mail":
    for cmd in (b"EHLO customer.example", b"MAIL FROM:<someone@example.com>", b"QUIT"):
        s.sendall(cmd + b"\r\n")
        codes.append(code())
else:
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    codes.append(code())
print(" ".join(codes))
"""

REMOTE = r"""
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", %d)); s.listen(16)
while True:
    c, _ = s.accept(); c.close()
""" % REMOTE_PORT


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def run(argv, check=True, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(argv), r.returncode, r.stdout))
    return r


def fail2ban_config(directory, jail_local):
    """A private fail2ban configuration directory: Debian's base files (fail2ban.conf,
    jail.conf, paths-*.conf, common filter and iptables actions) without Debian's own enabled
    jails, the shipped subproxy files unchanged, and `jail_local` as jail.d/zz-test.local.
    Socket, pid file, database and log live in `directory`."""
    conf = os.path.join(directory, "conf")
    shutil.copytree("/etc/fail2ban", conf)
    for name in os.listdir(os.path.join(conf, "jail.d")):
        os.unlink(os.path.join(conf, "jail.d", name))
    for sub in ("filter.d", "action.d", "jail.d"):
        for name in os.listdir(os.path.join(EX, sub)):
            shutil.copy(os.path.join(EX, sub, name), os.path.join(conf, sub, name))
    with open(os.path.join(conf, "fail2ban.local"), "w") as f:
        f.write("[Definition]\nloglevel = INFO\nlogtarget = %s/fail2ban.log\nsocket = %s/f2b.sock\n"
                "pidfile = %s/f2b.pid\ndbfile = %s/f2b.sqlite3\nallowipv6 = auto\n" % ((directory,) * 4))
    with open(os.path.join(conf, "jail.d", "zz-test.local"), "w") as f:
        f.write(jail_local)
    return conf


class Fail2banServer:
    """fail2ban-server in the foreground with a private configuration (optionally inside a
    network namespace); stopped with `fail2ban-client stop`, killed by pid if that fails."""

    def __init__(self, directory, conf, netns=None):
        self.dir = directory
        self.sock = os.path.join(directory, "f2b.sock")
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self.out = open(os.path.join(directory, "server.out"), "w")
        self.proc = subprocess.Popen(prefix + ["fail2ban-server", "-f", "-x", "-c", conf], stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def client(self, *args, check=True):
        return run(["fail2ban-client", "-s", self.sock] + list(args), check=check)

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if os.path.exists(self.sock) and self.client("ping", check=False).returncode == 0:
                return True
            time.sleep(0.2)
        return False

    def log(self):
        path = os.path.join(self.dir, "fail2ban.log")
        return read(path) if os.path.exists(path) else ""

    def stop(self):
        if self.proc.poll() is None:
            self.client("stop", check=False)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()


@unittest.skipUnless(shutil.which("fail2ban-server"), "fail2ban not installed (make deps)")
class ShippedJails(unittest.TestCase):
    def test_every_shipped_jail_starts_on_a_host_without_syslog_files(self):
        """As shipped, enabled, nothing else changed: all five jails run (systemd backend)."""
        d = tempfile.mkdtemp(prefix="f2b-jails.", dir=h.workdir())
        jails = []
        for name in sorted(os.listdir(os.path.join(EX, "jail.d"))):
            jails += re.findall(r"(?m)^\[([\w-]+)\]", read(os.path.join(EX, "jail.d", name)))
        self.assertEqual(sorted(jails), ["subproxy-accounts", "subproxy-auth", "subproxy-ban", "subproxy-noauth",
                                         "subproxy-trap"])
        conf = fail2ban_config(d, "".join("[%s]\nenabled = true\n" % j for j in jails))
        # A private network namespace: the jails' actions create chains in its firewall only.
        ns = "spx-f2bj-%d" % os.getpid()
        if os.geteuid() != 0 or run(["ip", "netns", "add", ns], check=False).returncode != 0:
            ns = None
        try:
            server = Fail2banServer(d, conf, netns=ns)
            try:
                ready = server.wait_ready()
                self.assertTrue(ready, server.log() + read(os.path.join(d, "server.out")))
                status = server.client("status").stdout
                for jail in jails:
                    self.assertIn(jail, status)
                    st = server.client("status", jail).stdout
                    self.assertIn("Journal matches:\tSYSLOG_IDENTIFIER=subproxy _TRANSPORT=syslog", st)
            finally:
                server.stop()
        finally:
            if ns:
                run(["ip", "netns", "del", ns], check=False)

    def test_trap_jails_spare_a_single_no_auth(self):
        """The policy in the files: one no_auth never bans; the other signals ban at once."""
        text = read(os.path.join(EX, "jail.d", "subproxy-trap.conf"))
        jails = dict(re.findall(r"(?ms)^\[([\w-]+)\]\n(.*?)(?=^\[|\Z)", text))
        trap, noauth = jails["subproxy-trap"], jails["subproxy-noauth"]
        signals = lambda body: set(re.search(r'signals="([^"]*)"', body).group(1).split("|"))  # noqa: E731
        setting = lambda body, key: re.search(r"(?m)^%s\s*=\s*(\S+)" % key, body).group(1)     # noqa: E731
        self.assertEqual(signals(trap), {"pregreet", "fanout", "non_smtp", "bare_newline"})
        self.assertEqual(signals(noauth), {"no_auth"})
        self.assertEqual(setting(trap, "maxretry"), "1")
        self.assertGreater(int(setting(noauth, "maxretry")), 1)
        for body in (trap, noauth):
            self.assertEqual(setting(body, "action"), "subproxy-forward")
            self.assertEqual(setting(body, "backend"), "systemd")
            self.assertEqual(setting(body, "enabled"), "false")


@unittest.skipUnless(os.geteuid() == 0, "needs root (network namespaces, iptables)")
class ForwardBan(unittest.TestCase):
    undo = []

    @classmethod
    def setUpClass(cls):
        for tool in ("ip", "iptables", "ip6tables", "fail2ban-server", "fail2ban-client"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest("%s not installed" % tool)
        cls.undo, cls.procs, cls.f2b = [], [], None
        try:
            cls._setup()
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def ns(cls, name):
        return "spx-f2b-%s-%d" % (name, os.getpid())

    @classmethod
    def in_ns(cls, name, argv, check=True):
        return run(["ip", "netns", "exec", cls.ns(name)] + argv, check=check)

    @classmethod
    def _setup(cls):
        gw = cls.ns("gw")
        for name in ("gw", "bot", "hon", "rem"):
            r = run(["ip", "netns", "add", cls.ns(name)], check=False)
            if r.returncode != 0:
                raise unittest.SkipTest("ip netns add failed: " + r.stdout.strip())
            cls.undo.append(["ip", "netns", "del", cls.ns(name)])
        cls.in_ns("gw", ["ip", "link", "set", "lo", "up"])
        for name, (g4, p4, g6, p6) in NETS.items():
            peer = cls.ns(name)
            # Both ends are created inside namespaces: deleting the namespaces removes them.
            run(["ip", "-n", gw, "link", "add", "to-" + name, "type", "veth", "peer", "name", "eth0",
                 "netns", peer])
            for argv in (["ip", "-n", gw, "addr", "add", g4 + "/24", "dev", "to-" + name],
                         ["ip", "-n", gw, "-6", "addr", "add", g6 + "/64", "dev", "to-" + name, "nodad"],
                         ["ip", "-n", gw, "link", "set", "to-" + name, "up"],
                         ["ip", "-n", peer, "link", "set", "lo", "up"],
                         ["ip", "-n", peer, "addr", "add", p4 + "/24", "dev", "eth0"],
                         ["ip", "-n", peer, "-6", "addr", "add", p6 + "/64", "dev", "eth0", "nodad"],
                         ["ip", "-n", peer, "link", "set", "eth0", "up"],
                         ["ip", "-n", peer, "route", "add", "default", "via", g4],
                         ["ip", "-n", peer, "-6", "route", "add", "default", "via", g6]):
                run(argv)
        run(["ip", "-n", cls.ns("bot"), "-6", "addr", "add", BOT_V6_SIBLING + "/64", "dev", "eth0", "nodad"])
        cls.in_ns("gw", ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
        for tool in ("iptables", "ip6tables"):
            r = cls.in_ns("gw", [tool, "-w", "10", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "25",
                                 "-j", "REDIRECT", "--to-ports", str(PROXY_PORT)], check=False)
            if r.returncode != 0:
                raise unittest.SkipTest("%s nat REDIRECT unavailable: %s" % (tool, r.stdout.strip()))

        cls.dir = d = tempfile.mkdtemp(prefix="f2b-forward.", dir=h.workdir())
        # "The Internet": a TCP service in the remote namespace.
        cls.procs.append(subprocess.Popen(["ip", "netns", "exec", cls.ns("rem"), sys.executable, "-c", REMOTE],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # subproxy in the gateway, defaults for the trap (every signal logged, HTTP refused).
        # Nobody authenticates here, so the MSA is never dialled.
        config = {
            "hostname": "proxy.test",
            "listen": [{"address": "0.0.0.0", "port": PROXY_PORT}, {"address": "::", "port": PROXY_PORT}],
            "tls": {"cert": os.path.join(h.CERTS, "proxy.pem"), "key": os.path.join(h.CERTS, "proxy.key")},
            "auth": {"backend": "upstream", "mechanisms": ["PLAIN", "LOGIN"]},
            "upstream": {"host": "127.0.0.1", "port": 587},
            "user": "root",
            "guard": {"auth_delay": 0, "ban_threshold": 0, "max_sessions_per_client": 0},
            "limits": {"shutdown_grace": 1},
            "log_file": os.path.join(d, "mail.log"),
            "client_name": {"lookup": False},   # no reverse lookups off loopback (harness.py)
        }
        conf_file = os.path.join(d, "subproxy.conf")
        with open(conf_file, "w") as f:
            for key, value in config.items():
                f.write("%s = %s;\n" % (key, h.libconfig(value)))
        cls.proxy_log = os.path.join(d, "subproxy.log")
        with open(cls.proxy_log, "wb") as log:
            cls.proxy = subprocess.Popen(["ip", "netns", "exec", gw, h.SUBPROXY, "-f", "-c", conf_file],
                                         stdout=log, stderr=subprocess.STDOUT)
        cls.procs.append(cls.proxy)
        deadline = time.monotonic() + 10
        while "started; listening on" not in cls.log_text() and time.monotonic() < deadline:
            if cls.proxy.poll() is not None:
                break
            time.sleep(0.05)
        if "started; listening on" not in cls.log_text():
            raise RuntimeError("subproxy did not start:\n" + cls.log_text())

        cls.mail_log = config["log_file"]
        # The shipped jails, filter and action, unchanged; only where the lines come from (the
        # test has no journald for subproxy: its log_file instead) and how long a ban lasts are
        # the test's.
        override = "".join("[%s]\nenabled = true\nbackend = polling\nlogpath = %s\nbantime = %d\n\n"
                           % (jail, cls.mail_log, BANTIME) for jail in ("subproxy-trap", "subproxy-noauth"))
        conf = fail2ban_config(d, override)
        cls.f2b = Fail2banServer(d, conf, netns=gw)
        if not cls.f2b.wait_ready():
            raise RuntimeError("fail2ban-server did not start:\n" + cls.f2b.log() +
                               read(os.path.join(d, "server.out")))

    @classmethod
    def log_text(cls):
        return read(cls.proxy_log)

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()

    @classmethod
    def _cleanup(cls):
        errors = []
        if cls.f2b:
            try:
                cls.f2b.stop()
            except Exception as e:
                errors.append("fail2ban: %s" % e)
            cls.f2b = None
        for p in cls.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        cls.procs = []
        for argv in reversed(cls.undo):
            r = run(argv, check=False)
            if r.returncode != 0:
                errors.append("%s: %s" % (" ".join(argv), r.stdout.strip()))
        cls.undo = []
        if errors:
            print("test_fail2ban cleanup problems:\n  " + "\n  ".join(errors), file=sys.stderr)

    # -- helpers ----------------------------------------------------------------------------

    def client(self, who, *args):
        return self.in_ns(who, [sys.executable, "-c", CLIENT] + [str(a) for a in args], check=False)

    def reaches_remote(self, who, v6, source=None):
        remote = NETS["rem"][3] if v6 else NETS["rem"][1]
        return self.client(who, "probe", remote, REMOTE_PORT, *([source] if source else [])).returncode == 0

    def smtp(self, who, v6, what):
        """One session from the customer's own address (not the bot's /64 sibling)."""
        gw, src = (NETS[who][2], NETS[who][3]) if v6 else (NETS[who][0], NETS[who][1])
        r = self.client(who, "smtp", gw, what, src)
        self.assertEqual(r.returncode, 0, r.stdout)
        return r.stdout.split()

    def chain(self, tool, jail):
        r = self.in_ns("gw", [tool, "-w", "10", "-S", "f2b-" + jail], check=False)
        return r.stdout if r.returncode == 0 else ""

    def wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        self.fail("%s within %ss\nfail2ban log:\n%s\nsubproxy log:\n%s"
                  % (what, timeout, self.f2b.log()[-3000:], self.log_text()[-3000:]))

    def banned(self, jail):
        st = self.f2b.client("status", jail).stdout
        return st.split("Banned IP list:", 1)[1].split()

    def failed_total(self, jail):
        return int(re.search(r"Total failed:\s+(\d+)", self.f2b.client("status", jail).stdout).group(1))

    # -- the test -----------------------------------------------------------------------------

    def test_bot_is_cut_off_in_forward_and_let_go_honest_customer_is_not(self):
        bot4, bot6 = NETS["bot"][1], NETS["bot"][3]
        hon4, hon6 = NETS["hon"][1], NETS["hon"][3]
        for v6 in (False, True):
            self.assertTrue(self.reaches_remote("bot", v6), "no route through the gateway before any ban")

        # The honest legacy customer tries once without AUTH, over IPv4 and IPv6: it reads 530.
        for v6 in (False, True):
            self.assertEqual(self.smtp("hon", v6, "mail"), ["220", "250", "530", "221"])
        # The bot: MAIL without AUTH connection after connection (IPv4), HTTP to port 25 (IPv6).
        for _ in range(5):
            self.assertEqual(self.smtp("bot", False, "mail"), ["220", "250", "530", "221"])
        self.assertEqual(self.smtp("bot", True, "http")[:2], ["220", "554"])
        log = self.log_text()
        for who in (hon4, hon6):
            self.assertEqual(len(re.findall(r"\[%s\]:\d+: trap: signal=no_auth " % re.escape(who), log)), 1, log)
        self.assertEqual(len(re.findall(r"\[%s\]:\d+: trap: signal=no_auth " % re.escape(bot4), log)), 5, log)

        # Banned: IPv4 in the noauth jail, IPv6 (its /64) in the trap jail, both in FORWARD.
        self.wait(lambda: "-s %s/32 " % bot4 in self.chain("iptables", "subproxy-noauth"), 15,
                  "IPv4 bot banned in f2b-subproxy-noauth")
        self.wait(lambda: "-s fd77:1::/64 " in self.chain("ip6tables", "subproxy-trap"), 15,
                  "IPv6 bot's /64 banned in f2b-subproxy-trap")
        started = time.monotonic()
        for tool, jail in (("iptables", "subproxy-noauth"), ("ip6tables", "subproxy-trap")):
            fwd = self.in_ns("gw", [tool, "-w", "10", "-S", "FORWARD"]).stdout
            self.assertIn("-A FORWARD -j f2b-%s" % jail, fwd)       # every protocol, every port
            self.assertEqual(self.in_ns("gw", [tool, "-w", "10", "-S", "INPUT"]).stdout.strip(), "-P INPUT ACCEPT")
            listing = self.in_ns("gw", [tool, "-w", "10", "-n", "-L", "f2b-" + jail]).stdout
            self.assertRegex(listing, r"REJECT\s+(all|0)\s+.*(10\.77\.1\.2|fd77:1::/64)")
        self.assertEqual(self.banned("subproxy-noauth"), [bot4])
        self.assertEqual(self.banned("subproxy-trap"), [bot6])
        # fail2ban read the honest customers' lines (they precede the bot's) and kept them.
        self.assertEqual(self.failed_total("subproxy-noauth"), 2 + 5)

        # The bot is cut off from "the Internet", both families, its /64 sibling too; the
        # honest customer is not.
        self.assertFalse(self.reaches_remote("bot", False))
        self.assertFalse(self.reaches_remote("bot", True))
        self.assertFalse(self.reaches_remote("bot", True, source=BOT_V6_SIBLING))
        self.assertTrue(self.reaches_remote("hon", False))
        self.assertTrue(self.reaches_remote("hon", True))
        # subproxy still hears from it (INPUT is untouched): its replies keep teaching.
        self.assertEqual(self.smtp("bot", False, "mail")[0], "220")

        # After bantime the rules go and the bot gets through again.
        self.wait(lambda: " -s " not in self.chain("iptables", "subproxy-noauth")
                  and " -s " not in self.chain("ip6tables", "subproxy-trap"), BANTIME + 15, "unban")
        lifted = time.monotonic() - started
        self.assertTrue(self.reaches_remote("bot", False))
        self.assertTrue(self.reaches_remote("bot", True))
        self.assertIn("Unban %s" % bot4, self.f2b.log())
        self.assertIn("Unban %s" % bot6, self.f2b.log())
        print("\n  fail2ban: bot banned in FORWARD (v4, v6 /64), lifted after %.1fs (bantime %ds)"
              % (lifted, BANTIME), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
