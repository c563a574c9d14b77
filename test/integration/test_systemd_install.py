"""The service as systemd and a packager see it: the pid file that `subproxy -t` must check for
the account that writes it, the unit's stop timeout against the daemon's own shutdown bound,
its exposure score from `systemd-analyze security`, and `make install` with PREFIX, DESTDIR,
sysconfdir and a stripped binary."""
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import harness as h

UNIT = os.path.join(h.REPO, "examples", "systemd", "subproxy.service")
ROOT = os.geteuid() == 0


def read(path):
    with open(path) as f:
        return f.read()


def minimal_config(directory, extra=""):
    """A configuration any account can check: readable copies of the test certificate, the MSA
    checks the passwords (no Cyrus files), no `user` to drop to."""
    os.chmod(directory, 0o755)
    for name in ("proxy.pem", "proxy.key"):
        shutil.copy(os.path.join(h.CERTS, name), directory)
        os.chmod(os.path.join(directory, name), 0o644)
    path = os.path.join(directory, "subproxy.conf")
    with open(path, "w") as f:
        f.write('hostname = "proxy.test";\n'
                'listen = ( { address = "127.0.0.1"; port = %d; } );\n'
                'tls = { cert = "%s/proxy.pem"; key = "%s/proxy.key"; };\n'
                'auth = { backend = "upstream"; mechanisms = [ "PLAIN", "LOGIN" ]; };\n'
                'upstream = { host = "127.0.0.1"; verify = false; };\n%s'
                % (h.free_port(), directory, directory, extra))
    os.chmod(path, 0o644)
    return path


def as_nobody():
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)


class PidFileCheck(unittest.TestCase):
    """`subproxy -t` checks that whoever runs it (the account that will create the pid file)
    can create it: under systemd's User= that account cannot write /run."""

    def check(self, conf, preexec_fn=None):
        return subprocess.run([h.subproxy_for_others(), "-t", "-c", conf], capture_output=True, text=True, timeout=30,
                              preexec_fn=preexec_fn)

    @unittest.skipUnless(ROOT, "needs root (runs the check as nobody)")
    def test_service_user_cannot_create_the_pid_file_in_a_root_directory(self):
        d = tempfile.mkdtemp(prefix="pidcheck.", dir=h.workdir())
        run_dir = os.path.join(d, "run")          # root's, 0755: like /run for User=subproxy
        os.makedirs(run_dir)
        os.chmod(run_dir, 0o755)
        conf = minimal_config(d, 'pid_file = "%s/subproxy.pid";\n' % run_dir)
        r = self.check(conf, as_nobody)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertNotIn("configuration OK", r.stdout)
        self.assertRegex(r.stderr, re.escape(conf) + r":6: pid_file directory " + re.escape(run_dir) +
                         r": user nobody cannot create the pid file there \(Permission denied\); "
                         r"under systemd use RuntimeDirectory=subproxy")
        # What RuntimeDirectory=subproxy gives the service user: its own directory.
        own = os.path.join(run_dir, "subproxy")
        os.makedirs(own)
        os.chown(own, pwd.getpwnam("nobody").pw_uid, -1)
        with open(conf, "a") as f:
            f.write('pid_file = "%s/subproxy.pid";\n' % own)
        text = read(conf).replace('pid_file = "%s/subproxy.pid";\n' % run_dir, "")
        with open(conf, "w") as f:
            f.write(text)
        r = self.check(conf, as_nobody)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration OK", r.stdout)

    def test_missing_pid_directory_is_reported(self):
        d = tempfile.mkdtemp(prefix="pidcheck.", dir=h.workdir())
        conf = minimal_config(d, 'pid_file = "%s/no-such-dir/subproxy.pid";\n' % d)
        r = self.check(conf)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("pid_file directory %s/no-such-dir: " % d, r.stderr)
        self.assertIn("(No such file or directory)", r.stderr)

    def test_existing_unwritable_pid_file_is_reported(self):
        """A leftover pid file of another owner, in a directory the account may write."""
        d = tempfile.mkdtemp(prefix="pidcheck.", dir=h.workdir())
        pid = os.path.join(d, "subproxy.pid")
        open(pid, "w").close()
        os.chmod(pid, 0o444)
        conf = minimal_config(d, 'pid_file = "%s";\n' % pid)
        if ROOT:     # root may write any file: check as nobody, who may write the directory
            os.chown(d, pwd.getpwnam("nobody").pw_uid, -1)
        r = self.check(conf, as_nobody if ROOT else None)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r":6: pid_file %s: user \S+ cannot write it \(Permission denied\)" % re.escape(pid))


def unit_settings():
    settings = {}
    for line in read(UNIT).splitlines():
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            settings.setdefault(m.group(1), []).append(m.group(2))
    return settings


def default_of(member):
    """A default from proxy/ops/config.h, where every default lives ("int shutdownGrace = 30;")."""
    m = re.search(r"\b%s = (\d+);" % member, read(os.path.join(h.REPO, "proxy", "ops", "config.h")))
    return int(m.group(1))


class SystemdUnit(unittest.TestCase):
    def test_stop_timeout_covers_the_grace_time_and_the_wait_for_the_msa(self):
        """systemd's SIGKILL must not come before subproxy's own bound on shutdown:
        limits.shutdown_grace, then up to upstream.data_done_timeout for a message after ".",
        with the values of the example configuration (or the defaults it leaves in place)."""
        example = read(os.path.join(h.REPO, "examples", "subproxy.conf"))

        def value(key, member):
            m = re.search(r"(?m)^\s*%s\s*=\s*(\d+)\s*;" % key, example)      # not commented out
            return int(m.group(1)) if m else default_of(member)

        grace = value("shutdown_grace", "shutdownGrace")
        data_done = value("data_done_timeout", "dataDoneTimeout")
        self.assertEqual((grace, data_done), (30, 600))
        [timeout] = unit_settings()["TimeoutStopSec"]
        self.assertGreaterEqual(int(timeout), grace + data_done + 30)
        # The rule is written down where the operator changes the keys.
        man = read(os.path.join(h.REPO, "man", "subproxy.8"))
        self.assertIn(".B TimeoutStopSec\n\\(>=\n.B limits.shutdown_grace\n+\n.B upstream.data_done_timeout\n+ 30",
                      man)

    def test_no_capabilities_for_redirect_and_the_hardening_asked_for(self):
        s = unit_settings()
        self.assertEqual(s["CapabilityBoundingSet"], [""])     # REDIRECT to high ports needs none
        self.assertNotIn("AmbientCapabilities", s)
        self.assertEqual(s["UMask"], ["0077"])
        self.assertEqual(s["ProcSubset"], ["pid"])
        self.assertEqual(s["RuntimeDirectory"], ["subproxy"])
        self.assertEqual(s["User"], ["subproxy"])

    @unittest.skipUnless(shutil.which("systemd-analyze"), "needs systemd-analyze")
    def test_exposure_score_at_most_1_5(self):
        d = tempfile.mkdtemp(prefix="unit-sec.", dir=h.workdir())
        path = os.path.join(d, "subproxy.service")
        shutil.copy(UNIT, path)
        # --offline=true (systemd 252): judge the file, not a loaded unit.
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", path],
                           capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        m = re.search(r"Overall exposure level for subproxy\.service: (\d+\.\d+)", out)
        self.assertTrue(m, out)
        score = float(m.group(1))
        print("\n  systemd-analyze security: exposure %.1f" % score, file=sys.stderr)
        self.assertLessEqual(score, 1.5, out)


class Install(unittest.TestCase):
    @unittest.skipUnless(shutil.which("strip") and shutil.which("file"), "needs binutils and file")
    def test_install_follows_prefix_destdir_and_strips(self):
        d = tempfile.mkdtemp(prefix="inst.", dir=h.workdir())
        r = subprocess.run(["make", "-s", "-C", h.REPO, "install", "DESTDIR=" + d, "PREFIX=/usr/local"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        files = sorted(os.path.relpath(os.path.join(root, f), d)
                       for root, _, names in os.walk(d) for f in names)
        for path in ("usr/local/sbin/subproxy", "usr/local/share/man/man8/subproxy.8",
                     "usr/local/share/man/man5/subproxy.conf.5",
                     "usr/local/etc/subproxy/subproxy.conf.example",
                     "usr/local/etc/subproxy/sasl-subproxy.conf.example",
                     "usr/local/lib/systemd/system/subproxy.service",
                     "usr/local/share/doc/subproxy/examples/fail2ban/action.d/subproxy-forward.conf",
                     "usr/local/share/doc/subproxy/sasl/subproxy.conf"):
            self.assertIn(path, files)
        # Nothing outside the prefix: sysconfdir follows it (no /etc for /usr/local).
        self.assertEqual([f for f in files if not f.startswith("usr/local/")], [])
        binary = os.path.join(d, "usr/local/sbin/subproxy")
        self.assertIn("stripped", subprocess.run(["file", binary], capture_output=True, text=True).stdout)
        self.assertNotIn("not stripped", subprocess.run(["file", binary], capture_output=True, text=True).stdout)
        self.assertEqual(os.stat(binary).st_mode & 0o777, 0o755)
        unit = read(os.path.join(d, "usr/local/lib/systemd/system/subproxy.service"))
        self.assertIn("ExecStart=/usr/local/sbin/subproxy -f -c /usr/local/etc/subproxy/subproxy.conf", unit)
        # The installed man pages name the installed examples, not the source tree's.
        man8 = read(os.path.join(d, "usr/local/share/man/man8/subproxy.8"))
        self.assertIn(".ds ex /usr/local/share/doc/subproxy/examples\n", man8)
        self.assertIn(".ds sa /usr/local/share/doc/subproxy/sasl\n", man8)
        rendered = subprocess.run(["man", "-l", "-P", "cat", os.path.join(d, "usr/local/share/man/man8/subproxy.8")],
                                  capture_output=True, text=True, env=dict(os.environ, MANWIDTH="200"), timeout=60)
        if rendered.returncode == 0:
            self.assertIn("/usr/local/share/doc/subproxy/examples/fail2ban/", rendered.stdout)
            self.assertNotRegex(rendered.stdout, r"(?<![/\w])examples/fail2ban/")

    def test_usr_prefix_puts_configuration_in_etc_and_sysconfdir_overrides(self):
        d = tempfile.mkdtemp(prefix="inst.", dir=h.workdir())
        subprocess.run(["make", "-s", "-C", h.REPO, "install", "DESTDIR=" + d, "PREFIX=/usr"],
                       check=True, capture_output=True, timeout=300)
        self.assertTrue(os.path.isfile(os.path.join(d, "etc/subproxy/subproxy.conf.example")))
        self.assertFalse(os.path.exists(os.path.join(d, "usr/etc")))
        d2 = tempfile.mkdtemp(prefix="inst.", dir=h.workdir())
        subprocess.run(["make", "-s", "-C", h.REPO, "install", "DESTDIR=" + d2, "PREFIX=/opt/subproxy",
                        "sysconfdir=/etc/opt/subproxy", "INSTALL_PROGRAM=install"],
                       check=True, capture_output=True, timeout=300)
        self.assertTrue(os.path.isfile(os.path.join(d2, "etc/opt/subproxy/subproxy/subproxy.conf.example")))
        out = subprocess.run(["file", os.path.join(d2, "opt/subproxy/sbin/subproxy")], capture_output=True,
                             text=True).stdout
        self.assertIn("not stripped", out)      # INSTALL_PROGRAM overridden: no -s


if __name__ == "__main__":
    unittest.main()
