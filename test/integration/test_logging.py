"""subproxy's own log file (log_file), for hosts without a syslog daemon: every line with an
RFC 3339 time stamp and "subproxy[PID]: ", the shipped logrotate configuration run by the real
logrotate (rename, create, postrotate's SIGUSR1, nothing lost), SIGHUP reopening too, the file
made by root for the account it drops to, a file the account can no longer create, `-t` on a
log_file that cannot be opened, and the shipped fail2ban filters reading the file.

Also the lines an operator greps: "which customers still send through port 25?" is one grep of
the message line, and every line about a session starts with its client."""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

import harness as h

LOGROTATE_EXAMPLE = os.path.join(h.REPO, "examples", "logrotate", "subproxy")
STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d) subproxy\[(\d+)\]: (.*)$")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def with_log_file(name, **kw):
    p = h.Proxy(name=name, **kw)
    p.config["log_file"] = os.path.join(p.dir, "log", "subproxy.log")
    os.mkdir(os.path.dirname(p.config["log_file"]), 0o755)
    return p


def wait_file(path, needle, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and needle in read(path):
            return True
        time.sleep(0.05)
    return False


def send(port, subject):
    c = h.login(port)
    code, lines = h.send_message(c, subject)
    assert code == 250, (code, lines)
    c.cmd("QUIT")
    c.close()


def subproxy(*args, **kw):
    return subprocess.run([h.SUBPROXY] + list(args), capture_output=True, text=True, timeout=30, **kw)


class LogFile(unittest.TestCase):
    def test_lines_carry_an_rfc3339_time_stamp_and_the_pid(self):
        p = with_log_file("logfile")
        path = p.config["log_file"]
        with p:
            send(p.port, "log file")
            self.assertTrue(wait_file(path, "reason=quit"))
        text = read(path)
        lines = text.splitlines()
        self.assertTrue(text.endswith("\n"))
        self.assertIn("subproxy stopped", lines[-1])
        for line in lines:
            m = STAMPED.match(line)
            self.assertTrue(m, line)
            self.assertEqual(int(m.group(2)), p.proc.pid)
        # The same lines as syslog and -f's standard error get, in the same order.
        stderr = [l[len("subproxy: "):] for l in p.log_text().splitlines() if l.startswith("subproxy: ")]
        self.assertEqual([STAMPED.match(l).group(3) for l in lines], stderr)
        # Time stamps are local time with its offset, and now.
        first = STAMPED.match(lines[0]).group(1)
        self.assertLess(abs(time.mktime(time.strptime(first[:19], "%Y-%m-%dT%H:%M:%S")) - time.time()), 120)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o640 & ~current_umask())

    def test_two_loops_logging_at_once_leave_every_sink_in_one_order(self):
        # With workers = 2 both loops log at the same moments; each line must reach standard
        # error and log_file in the same order (it did not: the CI caught a swapped pair).
        p = with_log_file("logfile-order")
        p.config["workers"] = 2
        path = p.config["log_file"]
        with p:
            def burst():
                for _ in range(30):
                    c = h.RawClient(p.port)
                    c.reply()
                    c.cmd("EHLO customer.example")
                    c.cmd("QUIT")
                    c.close()
            threads = [threading.Thread(target=burst) for _ in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertTrue(wait_file(path, "reason=quit"))
        lines = read(path).splitlines()
        stderr = [l[len("subproxy: "):] for l in p.log_text().splitlines() if l.startswith("subproxy: ")]
        self.assertGreater(len(lines), 1000)  # 600 sessions: a connect and a disconnect line each
        self.assertEqual([STAMPED.match(l).group(3) for l in lines], stderr)

    def test_shipped_logrotate_configuration_rotates_and_subproxy_reopens(self):
        if not shutil.which("logrotate"):
            self.skipTest("logrotate not installed (make deps)")
        p = with_log_file("logrotate")
        path = p.config["log_file"]
        pidfile = p.config["pid_file"] = os.path.join(p.dir, "subproxy.pid")
        # The shipped file with this test's paths (each replacement must hit, or the test
        # would not be running what ships); the rest, postrotate included, runs as shipped.
        text = read(LOGROTATE_EXAMPLE)
        for old, new in (("/var/log/subproxy/subproxy.log", path),
                         ("create 0640 subproxy adm", "create 0640 root root"),
                         ("/run/subproxy/subproxy.pid", pidfile),
                         # A unit of that name on this machine must not get our signal.
                         ("subproxy.service", "subproxy-test-%d.service" % os.getpid())):
            self.assertIn(old, text)
            text = text.replace(old, new)
        conf = os.path.join(p.dir, "logrotate.conf")
        with open(conf, "w") as f:
            f.write(text)
        state = os.path.join(p.dir, "logrotate.state")

        def rotate():
            r = subprocess.run(["logrotate", "--force", "--state", state, conf], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        with p:
            send(p.port, "before rotation")
            self.assertTrue(wait_file(path, "reason=quit"))
            rotate()
            self.assertTrue(os.path.exists(path + ".1"))                # delaycompress: plain
            self.assertTrue(wait_file(path, "SIGUSR1: log_file %s reopened" % path))
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o640)     # logrotate's create
            send(p.port, "after rotation")
            self.assertTrue(wait_file(path, "reason=quit"))
            old, new = read(path + ".1"), read(path)
            self.assertEqual(old.count("status=sent"), 1)
            self.assertEqual(new.count("status=sent"), 1)
            self.assertNotIn("SIGUSR1", old)
            rotate()                                                     # .1 -> .2.gz, compressed
            self.assertTrue(os.path.exists(path + ".2.gz"))
            self.assertTrue(wait_file(path, "SIGUSR1: log_file %s reopened" % path))
            self.assertEqual(p.proc.poll(), None)
        # Nothing lost: every line of the session went to one of the files.
        self.assertTrue(wait_file(path, "subproxy stopped"))

    def test_sighup_reopens_too_and_the_reload_is_logged_in_the_new_file(self):
        p = with_log_file("logfile-hup")
        path = p.config["log_file"]
        with p:
            self.assertTrue(wait_file(path, "started; listening on"))
            os.rename(path, path + ".old")
            p.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_file(path, "reload done"))
            self.assertIn("SIGHUP: log_file %s reopened" % path, read(path))
            self.assertNotIn("reload", read(path + ".old"))

    def test_made_by_root_for_the_account_it_drops_to(self):
        """Started as root with user = nobody: root opens the file (its directory is root's) and
        hands it to nobody, who can open it again at SIGUSR1.  After a rename nobody cannot
        create a new file there: a warning, and the lines keep going to the renamed file."""
        nobody = pwd.getpwnam("nobody")
        p = with_log_file("logfile-nobody", extra={"user": "nobody"})
        path = p.config["log_file"]
        with p:
            self.assertTrue(wait_file(path, "running as user nobody"))
            st = os.stat(path)
            self.assertEqual((st.st_uid, st.st_gid), (nobody.pw_uid, nobody.pw_gid))
            p.proc.send_signal(signal.SIGUSR1)
            self.assertTrue(wait_file(path, "SIGUSR1: log_file %s reopened" % path))
            os.rename(path, path + ".1")
            p.proc.send_signal(signal.SIGUSR1)
            self.assertTrue(wait_file(path + ".1", "warning: log_file %s: cannot reopen: Permission denied; "
                                                   "still writing to the file opened before" % path))
            self.assertFalse(os.path.exists(path))

    def test_a_symlink_is_refused(self):
        p = with_log_file("logfile-link")
        os.symlink(os.path.join(p.dir, "elsewhere"), p.config["log_file"])
        p.write_config()
        r = subproxy("-f", "-c", p.conf_file)
        self.assertEqual(r.returncode, 1)
        self.assertIn("error: log_file %s: cannot open: is a symbolic link" % p.config["log_file"], r.stderr)
        self.assertFalse(os.path.exists(os.path.join(p.dir, "elsewhere")))

    def test_check_names_a_log_file_that_cannot_be_opened(self):
        p = h.Proxy(name="logfile-check")
        missing = os.path.join(p.dir, "no-such-dir")
        p.config["log_file"] = os.path.join(missing, "subproxy.log")
        p.write_config()
        r = subproxy("-t", "-c", p.conf_file)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        line = next(i for i, l in enumerate(read(p.conf_file).splitlines(), 1) if l.startswith("log_file"))
        self.assertIn("%s:%d: log_file directory %s: user root cannot create the log file there "
                      "(No such file or directory)" % (p.conf_file, line, missing), r.stderr)
        r = subproxy("-f", "-c", p.conf_file)
        self.assertEqual(r.returncode, 1)
        self.assertIn("log_file %s: cannot open: No such file or directory" % p.config["log_file"], r.stderr)


class Fail2banOnTheLogFile(unittest.TestCase):
    """The shipped filters, run by the real fail2ban-regex on the log file as subproxy wrote
    it (time stamps and "subproxy[PID]:" included)."""

    def test_auth_and_trap_filters_match_the_log_file(self):
        auth_filter, trap_filter = h.fail2ban_filter("subproxy-auth"), h.fail2ban_filter("subproxy-trap")
        if not auth_filter:
            self.skipTest("fail2ban not installed (make deps)")
        p = with_log_file("logfile-f2b", limits={"max_auth_failures": 10})
        path = p.config["log_file"]
        with p:
            c = h.RawClient(p.port)
            c.reply()
            c.cmd("EHLO bot.example")
            self.assertEqual(c.cmd("MAIL FROM:<spam@example.com>")[0], 530)   # no_auth
            c.close()
            c = h.RawClient(p.port)
            c.reply()
            c.cmd("EHLO customer.example")
            c.starttls()
            c.cmd("EHLO customer.example")
            for user in ("alice", "mallory"):
                self.assertEqual(h.auth(c, "PLAIN", user, "wrong")[0], 535)
            c.close()
            self.assertTrue(wait_file(path, "sasl_username=mallory"))
        self.assertEqual(h.fail2ban_regex(path, auth_filter), 2)
        self.assertEqual(h.fail2ban_regex(path, auth_filter, out="user"), ["alice", "mallory"])
        self.assertEqual(h.fail2ban_regex(path, trap_filter + '[signals="no_auth"]', out="ip"), ["127.0.0.1"])


class GreppableLines(unittest.TestCase):
    def test_customers_still_on_port_25_is_one_grep(self):
        """Two customers dial "port 25" (here: the listener that stands for the redirected
        port), one of them dials "465": the message lines alone name who is on which port."""
        port25, port465 = h.free_port(), h.free_port()
        p = with_log_file("logfile-grep", port=port25, listen=[{"address": "127.0.0.1", "port": port25},
                                                                {"address": "127.0.0.1", "port": port465}])
        path = p.config["log_file"]
        with p:
            send(port25, "alice on 25")
            c = h.login(port25, user="bob")
            c.cmd("MAIL FROM:<bob@example.com>")
            c.cmd("RCPT TO:<alice@example.com>")
            c.cmd("DATA")
            c.send(h.message("bob on 25", sender="bob@example.com", rcpt="alice@example.com") + b".\r\n")
            self.assertEqual(c.reply()[0], 250)
            c.cmd("QUIT")
            c.close()
            send(port465, "alice on the other port")
            self.assertTrue(wait_file(path, "dialled_port=%d status=sent" % port465))
            time.sleep(0.3)
        r = subprocess.run("grep -o 'sasl_username=[^ ]* dialled_port=%d status=sent' %s | sort | uniq -c"
                           % (port25, path), shell=True, capture_output=True, text=True)
        self.assertEqual(r.stdout.split("\n")[:2], ["      1 sasl_username=alice dialled_port=%d status=sent" % port25,
                                                    "      1 sasl_username=bob dialled_port=%d status=sent" % port25])
        # Every line about a session starts with the client, the disconnect line too.
        for line in read(path).splitlines():
            rest = STAMPED.match(line).group(3)
            if re.search(r"disconnect|message |SASL|connect to", rest):
                self.assertRegex(rest, r"^(warning: )?\[127\.0\.0\.1\]:\d+: ", line)


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


if __name__ == "__main__":
    unittest.main()


class SyslogDatagrams(unittest.TestCase):
    """What reaches /dev/log, read by a datagram socket bound in a private mount namespace (a
    tmpfs over /dev, the socket bound over /dev/log): the format glibc's syslog(3) wrote
    ("<PRI>Mmm dd hh:mm:ss subproxy[PID]: ...", so journald and rsyslog file it as before), the
    facility and level in PRI, the pid of the process after all, and lines again after the
    syslog daemon restarted (its socket was replaced)."""

    # /dev becomes a directory of the test's: the real null/zero/urandom/random bound into it,
    # and the test's datagram socket as its "log".
    PRE = ("mount --make-rprivate / && for n in null zero urandom random; do touch {d}/dev/$n && "
           "mount --bind /dev/$n {d}/dev/$n; done && mount --bind {d}/dev /dev && exec {bin} -f -c {conf}")

    def listen(self, path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(0.2)
        return s

    def drain(self, s, until, timeout=10):
        lines, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline and not any(until in l for l in lines):
            try:
                lines.append(s.recv(65536).decode())
            except socket.timeout:
                pass
        return lines

    def start(self, p, **popen):
        """p's subproxy in a mount namespace whose /dev/log is a datagram socket of the test's:
        (that socket, the process)."""
        p.write_config()
        os.mkdir(os.path.join(p.dir, "dev"))
        s = self.listen(os.path.join(p.dir, "dev", "log"))
        proc = subprocess.Popen(["unshare", "-m", "sh", "-c", self.PRE.format(d=p.dir, bin=h.SUBPROXY,
                                                                              conf=p.conf_file)], **popen)
        if not h.wait_port(p.port, proc=proc):
            proc.kill()
            proc.wait()
            s.close()
            self.fail("subproxy did not start under unshare")
        return s, proc

    def one_message(self, p, s, subject):
        """What reached /dev/log up to the line of one message sent."""
        c = h.login(p.port)
        h.send_message(c, subject)
        c.cmd("QUIT")
        return self.drain(s, "status=sent")

    def test_under_systemd_the_journal_gets_each_line_once(self):
        # systemd connects -f's standard error to the journal and says so in JOURNAL_STREAM
        # (device:inode of that stream); the syslog line reaches the journal already, so the
        # copy on standard error would store and show every line twice.  A JOURNAL_STREAM
        # inherited by a shell but naming another stream (a terminal) changes nothing.
        for case in ("no JOURNAL_STREAM", "stderr is the journal", "JOURNAL_STREAM of another stream"):
            with self.subTest(case):
                p = h.Proxy(name="syslog-journal")
                err_path = os.path.join(p.dir, "stderr")
                env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
                with open(err_path, "wb") as err:
                    st = os.fstat(err.fileno())
                    if case == "stderr is the journal":
                        env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
                    elif case != "no JOURNAL_STREAM":
                        env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino + 1)
                    s, proc = self.start(p, stdout=err, stderr=err, env=env)
                try:
                    lines = self.one_message(p, s, "journal once")
                    self.assertEqual(sum("status=sent" in l for l in lines), 1, lines)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(15)
                    s.close()
                copies = read(err_path).count("status=sent")
                self.assertEqual(copies, 0 if case == "stderr is the journal" else 1, read(err_path))

    def test_lines_reach_dev_log_as_glibc_wrote_them_and_again_after_a_restart(self):
        p = h.Proxy(name="syslog-dgram")
        p.config["log_facility"] = "mail"
        path = os.path.join(p.dir, "dev", "log")
        s, proc = self.start(p, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            lines = self.one_message(p, s, "to syslog")
            sent = [l for l in lines if "status=sent" in l]
            self.assertEqual(len(sent), 1, lines)
            # mail (2 << 3) | info (6) = 22; the pid is the daemon's own (exec kept it).
            self.assertRegex(sent[0], r"^<22>[A-Z][a-z]{2} [ 0-3]\d \d\d:\d\d:\d\d subproxy\[%d\]: " % proc.pid)
            # The syslog daemon restarts: its socket is made anew at the same path.
            s.close()
            os.unlink(path)
            s = self.listen(path)
            time.sleep(1.2)  # at most one reconnection try a second
            lines = self.one_message(p, s, "after the restart")
            self.assertTrue(any("status=sent" in l for l in lines), lines)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
            s.close()
