"""Files the daemon writes in a directory other users can write (issue 8 item 8): a symlink
planted where subproxy writes its temporary file (guard.state_file, migration.state_file) or at
the pid file is never followed, the state is still written; `subproxy -t` warns about
group/world-writable state directories.

The tests run as root, as the daemon does when it starts: a followed link would let any local
user overwrite (or create) any file on the machine."""
import grp
import os
import re
import subprocess
import time
import unittest
import uuid

import harness as h
from test_guard import guarded, tls_session, timed_auth

PRECIOUS = "root's file: must not change\n"


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


class PlantedLinks(unittest.TestCase):
    def test_guard_state_temp_file_link_is_not_followed(self):
        p = guarded("files-guard", {"auth_delay": 0, "ban_threshold": 1, "max_sessions_per_client": 0})
        state = p.config["guard"]["state_file"]
        victim = os.path.join(p.dir, "victim")
        with open(victim, "w") as f:
            f.write(PRECIOUS)
        with p:
            # The name the daemon will write next: STATE.tmp.<pid>.
            link = "%s.tmp.%d" % (state, p.proc.pid)
            os.symlink(victim, link)
            c = tls_session("127.0.0.31", p.port)
            self.assertEqual(timed_auth(c, "mallory", "guess")[0], 535)    # banned: flushed within 1 s
            c.close()
            self.assertTrue(wait_for(lambda: "ban 127.0.0.31 " in (read(state) or "")),
                            (read(state), p.log_text()[-1500:]))
            self.assertEqual(read(victim), PRECIOUS)
            self.assertFalse(os.path.islink(state), "the state file is now a link to " + os.readlink(state)
                             if os.path.islink(state) else "")
            self.assertFalse(os.path.lexists(link))       # removed, not written through
            self.assertEqual(os.stat(state).st_mode & 0o777, 0o600)
            self.assertNotIn("state file not saved", p.log_text())
        self.assertEqual(read(victim), PRECIOUS)

    def test_migration_report_temp_file_link_is_not_followed(self):
        p = h.Proxy(name="files-migration", extra={"migration": {"state_file": "migration.state", "flush_interval": 1}})
        state = os.path.join(p.dir, "migration.state")
        target = os.path.join(p.dir, "created-by-root")     # does not exist: O_CREAT would make it
        with p:
            for name in (state + ".tmp", "%s.tmp.%d" % (state, p.proc.pid)):
                os.symlink(target, name)
            c = h.login(p.port, "alice")
            c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
            self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
            c.send(h.message("planted link " + uuid.uuid4().hex[:8]) + b".\r\n")
            self.assertEqual(c.reply()[0], 250)
            c.cmd("QUIT")
            c.close()
            self.assertTrue(wait_for(lambda: "R alice " in (read(state) or "")),
                            (read(state), p.log_text()[-1500:]))
            self.assertFalse(os.path.lexists(target))
            self.assertFalse(os.path.islink(state))
            self.assertEqual(os.stat(state).st_mode & 0o777, 0o640)
            self.assertNotIn("migration.state_file: cannot write", p.log_text())

    def test_pid_file_link_is_replaced_not_followed(self):
        p = h.Proxy(name="files-pid")
        pidfile = os.path.join(p.dir, "subproxy.pid")
        victim = os.path.join(p.dir, "victim")
        with open(victim, "w") as f:
            f.write(PRECIOUS)
        os.symlink(victim, pidfile)
        p.config["pid_file"] = pidfile
        with p:
            self.assertFalse(os.path.islink(pidfile))
            self.assertEqual(read(pidfile), "%d\n" % p.proc.pid)
            self.assertEqual(read(victim), PRECIOUS)
        self.assertFalse(os.path.lexists(pidfile))        # removed at exit
        self.assertEqual(read(victim), PRECIOUS)


class CheckWarnsAboutOpenDirectories(unittest.TestCase):
    def check(self, mode, gid=0):
        p = h.Proxy(name="files-check")
        shared = os.path.join(p.dir, "shared")
        os.mkdir(shared)
        os.chown(shared, 0, gid)
        os.chmod(shared, mode)
        p.config["guard"]["state_file"] = os.path.join(shared, "guard.state")
        p.config["migration"] = {"state_file": os.path.join(p.dir, "migration.state")}   # a private dir
        p.write_config()
        r = subprocess.run([h.SUBPROXY, "-t", "-c", p.conf_file], capture_output=True, text=True, timeout=30)
        guard_line = next(i for i, l in enumerate(open(p.conf_file).read().splitlines(), 1) if l.startswith("guard ="))
        return r, p.conf_file, guard_line, shared

    def test_world_writable_directory_without_sticky_bit(self):
        r, conf, line, shared = self.check(0o777)
        self.assertEqual(r.returncode, 0, r.stderr)          # a warning, not an error
        self.assertIn("configuration OK", r.stdout)
        self.assertRegex(r.stderr, re.escape("%s:%d: warning: guard.state_file: directory %s (mode 0777) is writable "
                                             "by every local user and has no sticky bit" % (conf, line, shared)))
        self.assertNotIn("migration.state_file", r.stderr)   # its directory is the proxy's own, 0755
        print("\n  -t: " + r.stderr.strip())

    def test_sticky_and_group_writable_directories(self):
        r, _, _, _ = self.check(0o1777)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("(mode 1777) is writable by every local user; the sticky bit", r.stderr)
        r, _, _, _ = self.check(0o2775, gid=grp.getgrnam("nogroup").gr_gid)
        self.assertRegex(r.stderr, r"warning: guard\.state_file: directory \S+ \(mode 2775\) is writable by group "
                                   r"nogroup and has no sticky bit")
        r, _, _, _ = self.check(0o775)      # group root: as trusted as its owner
        self.assertNotIn("warning", r.stderr)

    def test_accounts_state_file_directory_is_checked_too(self):
        p = h.Proxy(name="files-check-accounts")
        shared = os.path.join(p.dir, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o777)
        p.config["accounts"] = {"state_file": os.path.join(shared, "accounts.state")}
        p.write_config()
        r = subprocess.run([h.SUBPROXY, "-t", "-c", p.conf_file], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        line = next(i for i, l in enumerate(open(p.conf_file).read().splitlines(), 1) if l.startswith("accounts ="))
        self.assertIn("%s:%d: warning: accounts.state_file: directory %s (mode 0777) is writable by every local user"
                      % (p.conf_file, line, shared), r.stderr)

    def test_private_directory_gives_no_warning(self):
        r, _, _, _ = self.check(0o755)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("warning", r.stderr)


if __name__ == "__main__":
    unittest.main()
