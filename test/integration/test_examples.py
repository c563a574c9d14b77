"""Every file in examples/ (and sasl/subproxy.conf) is exercised: firewall rules loaded in a
network namespace this test creates, Postfix snippets checked by postconf and `postfix check`,
the commented subproxy.conf and the Cyrus files by `subproxy -t`, the systemd unit by
`systemd-analyze verify`."""
import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import unittest
import uuid

import harness as h

EX = os.path.join(h.REPO, "examples")
ROOT = os.geteuid() == 0


def sh(cmd, check=True, **kw):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, timeout=60, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (cmd, r.returncode, r.stdout, r.stderr))
    return r


class Netns:
    """A throw-away network namespace with one veth end ("cust0") inside, lo up."""

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.name = "spx-ex-" + tag
        self.outer = "spxo" + tag

    def __enter__(self):
        sh(["ip", "netns", "add", self.name])
        sh(["ip", "link", "add", self.outer, "type", "veth", "peer", "name", "cust0", "netns", self.name])
        self.run("ip link set lo up && ip link set cust0 up")
        return self

    def run(self, cmd, check=True, env=None):
        return sh(["ip", "netns", "exec", self.name, "sh", "-c", cmd], check=check,
                  env=dict(os.environ, **(env or {})))

    def __exit__(self, *exc):
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        return False


@unittest.skipUnless(ROOT and shutil.which("ip") and shutil.which("iptables"), "needs root, iproute2, iptables")
class Firewall(unittest.TestCase):
    def test_iptables_redirect_and_tunnel_rules(self):
        with Netns() as ns:
            ns.run("sh %s/firewall/iptables.sh" % EX, env={"CUSTOMER_IF": "cust0"})
            for ipt in ("iptables", "ip6tables"):
                nat = ns.run(ipt + " -t nat -S PREROUTING").stdout
                self.assertIn("-i cust0 -p tcp -m tcp --dport 25 -j REDIRECT --to-ports 10025", nat)
                self.assertIn("-i cust0 -p tcp -m tcp --dport 465 -j REDIRECT --to-ports 10465", nat)
            fwd = ns.run("iptables -S FORWARD").stdout
            # 6in4/6to4 (protocol 41) and Teredo (UDP) carrying TCP to 25/465 (0x19, 0x1d1).
            self.assertRegex(fwd, r"-i cust0 -p ipv6 -m u32 .*&0xffff=0x19,0x1d1\" -j DROP")
            self.assertRegex(fwd, r"-i cust0 -p udp -m u32 .*@0x8>>0x1c=0x6.*=0x19,0x1d1\" -j DROP")

    def test_iptables_tproxy(self):
        with Netns() as ns:
            ns.run("sh %s/firewall/iptables.sh" % EX, env={"CUSTOMER_IF": "cust0", "MODE": "tproxy"})
            for ipt in ("iptables", "ip6tables"):
                mangle = ns.run(ipt + " -t mangle -S PREROUTING").stdout
                self.assertIn("-m socket --transparent -j SUBPROXY_DIVERT", mangle)
                self.assertRegex(mangle, r"--dport 25 -j TPROXY --on-port 10025 .*--tproxy-mark 0x1/0x1")
                self.assertRegex(mangle, r"--dport 465 -j TPROXY --on-port 10465 .*--tproxy-mark 0x1/0x1")
                self.assertEqual(ns.run(ipt + " -t nat -S PREROUTING").stdout.strip(), "-P PREROUTING ACCEPT")
            self.assertIn("fwmark 0x1 lookup 100", ns.run("ip -4 rule").stdout)
            self.assertIn("fwmark 0x1 lookup 100", ns.run("ip -6 rule").stdout)
            self.assertIn("local default dev lo", ns.run("ip -6 route show table 100").stdout)

    @unittest.skipUnless(shutil.which("nft"), "needs nft")
    def test_nftables_redirect_tunnels_and_tproxy(self):
        with Netns() as ns:
            for f in ("nftables.conf", "nftables-tproxy.conf"):
                ns.run("sed 's/\"eth1\"/\"cust0\"/' %s/firewall/%s | nft -f -" % (EX, f))
                ns.run("sed 's/\"eth1\"/\"cust0\"/' %s/firewall/%s | nft -f -" % (EX, f))  # idempotent reload
            rules = ns.run("nft list ruleset").stdout
            self.assertIn('iifname "cust0" tcp dport 25 redirect to :10025', rules)
            self.assertIn('iifname "cust0" tcp dport 465 redirect to :10465', rules)
            # nft prints the raw payload values in hex: 0x19 = 25, 0x1d1 = 465.
            self.assertEqual(len(re.findall(r"\{ 0x19, 0x1d1 \} drop", rules)), 2, rules)
            self.assertIn("tproxy ip to :10025", rules)
            self.assertIn("tproxy ip6 to :10465", rules)


@unittest.skipUnless(ROOT and shutil.which("postconf"), "needs root and Postfix")
class PostfixSnippets(unittest.TestCase):
    def test_snippets_pass_postconf_and_postfix_check(self):
        d = tempfile.mkdtemp(prefix="pfx.", dir=h.workdir())
        with open(os.path.join(d, "main.cf"), "w") as f:
            f.write(open("/usr/share/postfix/main.cf.debian").read() + "\n" +
                    open(os.path.join(EX, "postfix", "main.cf.snippet")).read())
        with open(os.path.join(d, "master.cf"), "w") as f:
            f.write(open("/usr/share/postfix/master.cf.dist").read() + "\n" +
                    open(os.path.join(EX, "postfix", "master.cf.snippet")).read())
        r = sh(["postconf", "-c", d, "-n"])
        self.assertEqual([l for l in r.stderr.splitlines() if d in l], [])
        self.assertIn("subproxy_hosts = 192.0.2.25, [2001:db8::25]", r.stdout)
        svc = sh(["postconf", "-c", d, "-P", "submission/inet"]).stdout
        for setting in ("smtpd_authorized_xclient_hosts = $subproxy_hosts", "smtpd_tls_auth_only = yes",
                        "smtpd_sasl_auth_enable = yes", "smtpd_tls_security_level = encrypt",
                        "smtpd_relay_restrictions = permit_sasl_authenticated,reject"):
            self.assertIn("submission/inet/" + setting, svc)
        self.assertNotIn("mynetworks", sh(["postconf", "-c", d, "-n", "mynetworks"], check=False).stdout)
        r = sh(["postfix", "-c", d, "check"])
        # Only complaints about our files count (the shared /etc/postfix/main.cf may be mid-edit
        # by a parallel test run's MSA set-up).
        self.assertEqual([l for l in (r.stdout + r.stderr).splitlines() if d in l], [])


class SubproxyConfig(unittest.TestCase):
    """examples/subproxy.conf with the paths of this machine substituted, checked by -t."""

    def prepare(self, sasl_file, user):
        d = tempfile.mkdtemp(prefix="ex.", dir=h.workdir())
        os.chmod(d, 0o755)
        for name in ("proxy.pem", "proxy.key"):
            shutil.copy(os.path.join(h.CERTS, name), d)
        os.makedirs(os.path.join(d, "sasl"))
        os.makedirs(os.path.join(d, "state"))
        h.make_sasldb(os.path.join(d, "sasl"))           # sasldb2 with alice and bob
        text = open(sasl_file).read().replace("/etc/subproxy/sasldb2", os.path.join(d, "sasl", "sasldb2"))
        with open(os.path.join(d, "sasl", "subproxy.conf"), "w") as f:
            f.write(text)
        conf = open(os.path.join(EX, "subproxy.conf")).read()
        for old, new in (("/etc/subproxy/cert.pem", d + "/proxy.pem"), ("/etc/subproxy/key.pem", d + "/proxy.key"),
                         ("/etc/subproxy/sasl\"", d + "/sasl\""), ("/var/lib/subproxy", d + "/state"),
                         ("/run/subproxy/subproxy.pid", d + "/subproxy.pid"),
                         ('user = "subproxy"', 'user = "%s"' % user), ('group = "subproxy"', 'group = "nogroup"')):
            self.assertIn(old, conf)
            conf = conf.replace(old, new)
        conf_file = os.path.join(d, "subproxy.conf")
        with open(conf_file, "w") as f:
            f.write(conf)
        return d, conf_file

    def check(self, conf_file):
        return subprocess.run([h.SUBPROXY, "-t", "-c", conf_file], capture_output=True, text=True, timeout=30)

    @unittest.skipUnless(ROOT, "needs root (checks the files as the unprivileged user)")
    def test_example_config_checks_as_nobody(self):
        d, conf_file = self.prepare(os.path.join(h.REPO, "sasl", "subproxy.conf"), "nobody")
        r = self.check(conf_file)
        # As shipped the files belong to root only: -t names each one with FILE:LINE.
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stderr, re.escape(conf_file) + r":\d+: tls.key .* user nobody cannot read it")
        self.assertRegex(r.stderr, r"subproxy.conf:\d+: sasldb_path .*sasldb2: user nobody cannot read it")
        self.assertRegex(r.stderr, re.escape(conf_file) + r":\d+: migration.state_file directory")
        # The permissions subproxy(8) tells the operator to set.
        nogroup = grp.getgrnam("nogroup").gr_gid
        for path in ("proxy.key", "sasl/sasldb2"):
            os.chown(os.path.join(d, path), 0, nogroup)
            os.chmod(os.path.join(d, path), 0o640)
        os.chown(os.path.join(d, "state"), pwd.getpwnam("nobody").pw_uid, nogroup)
        r = self.check(conf_file)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration OK", r.stdout)

    def test_example_config_with_saslauthd(self):
        d, conf_file = self.prepare(os.path.join(EX, "sasl", "saslauthd.conf"), "root")
        conf = open(conf_file).read()
        # As saslauthd.conf says: no CRAM-MD5 with saslauthd.
        self.assertIn('mechanisms = [ "PLAIN", "LOGIN", "CRAM-MD5" ]', conf)
        r = self.check(conf_file)
        self.assertEqual(r.returncode, 1)
        self.assertIn("CRAM-MD5", r.stdout + r.stderr)
        with open(conf_file, "w") as f:
            f.write(conf.replace('mechanisms = [ "PLAIN", "LOGIN", "CRAM-MD5" ]', 'mechanisms = [ "PLAIN", "LOGIN" ]'))
        r = self.check(conf_file)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


@unittest.skipUnless(shutil.which("systemd-analyze"), "needs systemd-analyze")
class SystemdUnit(unittest.TestCase):
    def test_unit_verifies(self):
        d = tempfile.mkdtemp(prefix="unit.", dir=h.workdir())
        for section in ("man5", "man8"):
            os.makedirs(os.path.join(d, "man", section))
        os.symlink(os.path.join(h.REPO, "man", "subproxy.8"), os.path.join(d, "man", "man8", "subproxy.8"))
        os.symlink(os.path.join(h.REPO, "man", "subproxy.conf.5"), os.path.join(d, "man", "man5", "subproxy.conf.5"))
        unit = open(os.path.join(EX, "systemd", "subproxy.service")).read()
        self.assertIn("ExecStart=/usr/local/sbin/subproxy -f ", unit)
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", unit)
        # Capabilities: none (CapabilityBoundingSet= empty), see test_systemd_install.py.
        for key in ("Type=simple", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
                    "PrivateTmp=yes", "CapabilityBoundingSet="):
            self.assertIn(key, unit)
        path = os.path.join(d, "subproxy.service")
        with open(path, "w") as f:
            f.write(unit.replace("/usr/local/sbin/subproxy", h.SUBPROXY))
        r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True, timeout=60,
                           cwd=d, env=dict(os.environ, MANPATH=os.path.join(d, "man")))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), "")


class Install(unittest.TestCase):
    def test_make_install_installs_binary_man_pages_examples_and_unit(self):
        d = tempfile.mkdtemp(prefix="inst.", dir=h.workdir())
        sh(["make", "-s", "-C", h.REPO, "install", "DESTDIR=" + d, "PREFIX=/usr"])
        for path in ("usr/sbin/subproxy", "usr/share/man/man8/subproxy.8", "usr/share/man/man5/subproxy.conf.5",
                     "etc/subproxy/subproxy.conf.example", "usr/lib/systemd/system/subproxy.service",
                     "usr/share/doc/subproxy/examples/firewall/iptables.sh"):
            self.assertTrue(os.path.isfile(os.path.join(d, path)), path)
        unit = open(os.path.join(d, "usr/lib/systemd/system/subproxy.service")).read()
        self.assertIn("ExecStart=/usr/sbin/subproxy -f ", unit)


if __name__ == "__main__":
    unittest.main()
