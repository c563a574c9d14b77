"""Password guessers and per-address limits (issue 3 items 1, 4, 5), over real connections:
the 535 delay doubling, the ban and its 421 (or silent close), an honest customer served at
full speed meanwhile, a restart that keeps the ban, the operator's list and lift (-b, -u),
per-address session and rate limits, trusted networks, and fail2ban-regex run on the lines
subproxy really logged.

Different loopback source addresses (127.0.0.2, 127.0.0.3, ...) stand for different customers:
Linux routes all of 127/8 to lo, so a client can bind any of them."""
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import threading
import time
import unittest
import uuid

import harness as h

# Small delays keep the suite fast; the doubling and the cap are what is checked.
FAST = {"auth_delay": 0.3, "auth_delay_max": 1.2, "ban_threshold": 5, "failure_window": 600,
        "ban_time": 600, "max_sessions_per_client": 0}


def guarded(name, guard, limits=None, **kw):
    """A Proxy with a guard group, its state file and control socket in the proxy's own dir."""
    p = h.Proxy(name=name, limits=dict({"max_auth_failures": 20}, **(limits or {})), **kw)
    g = dict(guard)
    g.setdefault("state_file", os.path.join(p.dir, "guard.state"))
    g.setdefault("control_socket", os.path.join(p.dir, "control.sock"))
    p.config["guard"] = g
    return p


client_from = h.client_from


def tls_session(source, port):
    c = client_from(source, port)
    code, lines = c.reply()
    assert code == 220, (code, lines)
    c.cmd("EHLO customer.example")
    c.starttls()
    c.cmd("EHLO customer.example")
    return c


def timed_auth(c, user, password, mech="PLAIN"):
    started = time.monotonic()
    code, lines = h.auth(c, mech, user, password)
    return code, lines, time.monotonic() - started


def refused_reply(source, port):
    """(code, text) of the first reply, or (None, b"") when closed without a word."""
    c = client_from(source, port)
    try:
        code, lines = c.reply()
        closed = c.closed() if code != 220 else False    # a greeting waits for a command
        return code, lines[0], closed
    except (EOFError, ConnectionResetError):
        return None, "", True
    finally:
        c.close()


def subproxy_cli(proxy, *args):
    return subprocess.run([h.SUBPROXY, "-c", proxy.conf_file] + list(args), capture_output=True, text=True,
                          timeout=20)


def honest_relay(port, source="127.0.0.1"):
    """Login as alice and send one message; returns (auth seconds, whole session seconds)."""
    started = time.monotonic()
    c = tls_session(source, port)
    code, _, auth_time = timed_auth(c, "alice", h.USERS["alice"])
    assert code == 235, code
    subject = "guard honest %s" % uuid.uuid4().hex[:8]
    code, lines = h.send_message(c, subject)
    assert code == 250, (code, lines)
    c.cmd("QUIT")
    c.close()
    return auth_time, time.monotonic() - started


class GuesserDelayedAndBanned(unittest.TestCase):
    def test_delays_double_then_ban_while_an_honest_customer_is_not_slowed(self):
        with guarded("guard-delay", FAST) as p:
            baseline = [honest_relay(p.port) for _ in range(3)]
            base_auth = max(a for a, _ in baseline)
            base_total = max(t for _, t in baseline)

            delays = []
            guesser_done = threading.Event()

            def guesser():
                try:
                    c = tls_session("127.0.0.2", p.port)
                    for i in range(5):
                        # The guessed name is the honest customer's own: only her wrong
                        # passwords are slowed, never her right one.
                        code, lines, took = timed_auth(c, "alice", "guess%d" % i)
                        delays.append((code, took))
                    c.close()
                finally:
                    guesser_done.set()

            t = threading.Thread(target=guesser)
            t.start()
            honest = []
            time.sleep(0.4)   # the guesser is inside its first delays now
            while not guesser_done.is_set() and len(honest) < 30:
                honest.append(honest_relay(p.port))
                time.sleep(0.2)   # spread over all five delays, the ban included
            t.join(30)

            self.assertEqual([c for c, _ in delays], [535] * 5)
            expected = [0.3, 0.6, 1.2, 1.2, 1.2]          # doubled, capped at auth_delay_max
            for (code, took), want in zip(delays, expected):
                self.assertGreaterEqual(took, want - 0.02, delays)
                self.assertLess(took, want + 0.5, delays)
            # The honest customer authenticated and relayed while the guesser waited, as fast
            # as before it started (generous margin for a loaded test machine).
            self.assertGreaterEqual(len(honest), 5)
            self.assertLess(max(a for a, _ in honest), base_auth + 0.25, (baseline, honest))
            self.assertLess(max(a for a, _ in honest), 0.3)   # never a penalty delay
            self.assertLess(max(s for _, s in honest), base_total + 1.0, (baseline, honest))
            print("\n  guesser 535 delays: %s s; honest auth %.3f s (baseline %.3f s), session %.3f s "
                  "(baseline %.3f s), %d sessions during the guessing"
                  % ([round(d, 3) for _, d in delays], max(a for a, _ in honest), base_auth,
                     max(s for _, s in honest), base_total, len(honest)))

            self.assertTrue(p.wait_log("ban: 5 AUTH failures from 127.0.0.2 in 600s; banned for 600s"))
            self.assertTrue(p.wait_log("auth penalty: reply delayed 1.200s (5 failures from 127.0.0.2"))
            # Banned: a new connection gets 421 4.7.0 and is closed, before any SMTP dialogue.
            code, text, closed = refused_reply("127.0.0.2", p.port)
            self.assertEqual(code, 421)
            self.assertTrue(text.startswith("4.7.0 proxy.test "), text)
            self.assertTrue(closed)
            self.assertTrue(p.wait_log("[127.0.0.2]:"))
            self.assertRegex(p.log_text(), r"warning: \[127\.0\.0\.2\]:\d+: ban: connection refused, "
                                           r"127\.0\.0\.2 is banned for another \d+s")
            # Others are not banned.
            honest_relay(p.port)
            self.assertNotIn("guess", p.log_text())   # passwords never logged

    def test_unknown_user_and_wrong_password_look_and_last_the_same(self):
        with guarded("guard-same", dict(FAST, auth_delay=0.5, auth_delay_max=0.5)) as p:
            seen = []
            for source, user in (("127.0.0.13", "alice"), ("127.0.0.14", "nosuchuser")):
                c = tls_session(source, p.port)
                code, lines, took = timed_auth(c, user, "wrong")
                seen.append(((code, lines), took))
                c.close()
            (a, ta), (b, tb) = seen
            self.assertEqual(a, b)
            self.assertEqual(a[0], 535)
            # The delay runs from the password's arrival: the backend's own time is inside it.
            self.assertLess(abs(ta - tb), 0.1, (ta, tb))
            self.assertGreaterEqual(min(ta, tb), 0.5 - 0.02)

    def test_guesser_hanging_up_during_the_delay_is_still_logged(self):
        with guarded("guard-hangup", dict(FAST, auth_delay=3.0, auth_delay_max=3.0)) as p:
            c = tls_session("127.0.0.15", p.port)
            c.send("AUTH PLAIN " + __import__("base64").b64encode(b"\0root\0toor").decode() + "\r\n")
            self.assertTrue(p.wait_log("auth penalty: reply delayed"))
            c.close()    # a bot that does not wait for its 535
            self.assertTrue(p.wait_log("[127.0.0.15]:", 1))
            self.assertTrue(p.wait_log("SASL PLAIN authentication failed: authentication failure, "
                                       "sasl_username=root", 2.0))

    def test_upstream_backend_delays_the_msas_535_too(self):
        with guarded("guard-upstream", dict(FAST, auth_delay=0.4, auth_delay_max=0.8),
                     backend="upstream", login="none") as p:
            c = tls_session("127.0.0.2", p.port)
            took = [timed_auth(c, "alice", "wrong%d" % i)[2] for i in range(2)]
            self.assertGreaterEqual(took[0], 0.4 - 0.02)
            self.assertGreaterEqual(took[1], 0.8 - 0.02)
            code, _, quick = timed_auth(c, "alice", h.USERS["alice"])
            self.assertEqual(code, 235)
            c.close()
            self.assertTrue(p.wait_log("SASL PLAIN authentication failed: rejected by the MSA"))


class BansSurviveAndAreManaged(unittest.TestCase):
    def test_restart_keeps_the_ban_and_the_operator_lists_and_lifts_it(self):
        p = guarded("guard-restart", dict(FAST, auth_delay=0.05, auth_delay_max=0.1, ban_threshold=2))
        p.start()
        try:
            c = tls_session("127.0.0.3", p.port)
            for i in range(2):
                self.assertEqual(timed_auth(c, "mallory", "pw%d" % i)[0], 535)
            c.close()
            self.assertTrue(p.wait_log("ban: 2 AUTH failures from 127.0.0.3"))
            listed = subproxy_cli(p, "-b")     # via the control socket
            self.assertEqual(listed.returncode, 0, listed.stderr)
            self.assertRegex(listed.stdout, r"^127\.0\.0\.3 until=\S+Z left=\d+s failures=2$")
        finally:
            self.assertEqual(p.stop(), 0)
        state = open(p.config["guard"]["state_file"]).read()
        self.assertRegex(state, r"(?m)^ban 127\.0\.0\.3 \d+ 2$")
        self.assertRegex(state, r"(?m)^user mallory 2 \d+$")
        # No daemon: -b reads the state file.
        offline = subproxy_cli(p, "-b")
        self.assertEqual(offline.returncode, 0, offline.stderr)
        self.assertIn("127.0.0.3 until=", offline.stdout)

        p.start()     # same configuration, same state file
        try:
            self.assertTrue(p.wait_log("guard: loaded"))
            code, text, _ = refused_reply("127.0.0.3", p.port)
            self.assertEqual((code, text[:5]), (421, "4.7.0"))
            self.assertEqual(refused_reply("127.0.0.4", p.port)[0], 220)   # only the guesser
            lifted = subproxy_cli(p, "-u", "127.0.0.3")
            self.assertEqual((lifted.returncode, lifted.stdout), (0, "lifted 127.0.0.3\n"), lifted.stderr)
            self.assertTrue(p.wait_log("guard: ban on 127.0.0.3 lifted by the operator"))
            self.assertEqual(refused_reply("127.0.0.3", p.port)[0], 220)
            again = subproxy_cli(p, "-u", "127.0.0.3")
            self.assertEqual(again.returncode, 1)
            self.assertEqual(subproxy_cli(p, "-b").stdout, "")
        finally:
            p.stop()
        self.assertNotRegex(open(p.config["guard"]["state_file"]).read(), r"(?m)^ban ")

    def test_lift_by_a_user_the_control_socket_refuses_fails_while_the_daemon_runs(self):
        """The daemon starts as root and drops to nobody: its control socket (bound as root,
        mode 0700) refuses nobody, who can still write the state file.  `-u` as nobody must
        say it could not reach the daemon and exit 1, not lift the ban in a file the daemon
        rewrites; once no daemon runs, the state file is the place to lift it."""
        nobody = pwd.getpwnam("nobody")
        p = guarded("guard-lift-denied", FAST, extra={"user": "nobody"})
        state_dir = os.path.join(p.dir, "state")
        os.mkdir(state_dir, 0o700)
        os.chown(state_dir, nobody.pw_uid, nobody.pw_gid)
        state = p.config["guard"]["state_file"] = os.path.join(state_dir, "guard.state")
        with open(state, "w") as f:
            f.write("ban 127.0.0.21 %d 9\n" % (int(time.time()) + 600))
        os.chown(state, nobody.pw_uid, nobody.pw_gid)

        def as_nobody():
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)

        with p:
            self.assertTrue(p.wait_log("running as user nobody"))
            self.assertEqual(refused_reply("127.0.0.21", p.port)[0], 421)
            r = subprocess.run([h.subproxy_for_others(), "-c", p.conf_file, "-u", "127.0.0.21"],
                               capture_output=True, text=True, timeout=20, preexec_fn=as_nobody)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertEqual(r.stdout, "")
            self.assertIn("ban on 127.0.0.21 not lifted: subproxy is running but its control socket %s cannot be "
                          "reached: Permission denied; run this as root, who owns the socket"
                          % p.config["guard"]["control_socket"], r.stderr)
            self.assertRegex(open(state).read(), r"(?m)^ban 127\.0\.0\.21 ")
            self.assertEqual(refused_reply("127.0.0.21", p.port)[0], 421)    # still banned
            listed = subprocess.run([h.subproxy_for_others(), "-c", p.conf_file, "-b"], capture_output=True, text=True,
                                    timeout=20, preexec_fn=as_nobody)
            self.assertEqual(listed.returncode, 1)
            self.assertIn("cannot list the bans: subproxy is running", listed.stderr)
        # No daemon now (its socket file is left behind: nobody could not remove it).
        offline = subproxy_cli(p, "-u", "127.0.0.21")
        self.assertEqual(offline.returncode, 0, offline.stderr)
        self.assertIn("lifted 127.0.0.21 (in %s; no daemon was listening" % state, offline.stdout)
        self.assertNotRegex(open(state).read(), r"(?m)^ban ")

    def test_lift_without_a_control_socket_fails_while_the_pid_file_names_a_daemon(self):
        p = guarded("guard-lift-nosocket", FAST)
        del p.config["guard"]["control_socket"]
        pidfile = p.config["pid_file"] = os.path.join(p.dir, "subproxy.pid")
        state = p.config["guard"]["state_file"]
        with open(state, "w") as f:
            f.write("ban 127.0.0.22 %d 9\n" % (int(time.time()) + 600))
        with p:
            self.assertTrue(p.wait_log("guard: loaded"))
            r = subproxy_cli(p, "-u", "127.0.0.22")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("ban on 127.0.0.22 not lifted: subproxy is running (pid %d in %s) but "
                          "guard.control_socket is not set" % (p.proc.pid, pidfile), r.stderr)
            self.assertRegex(open(state).read(), r"(?m)^ban 127\.0\.0\.22 ")
            self.assertEqual(refused_reply("127.0.0.22", p.port)[0], 421)

    def test_lift_of_an_address_that_is_not_banned_changes_nothing(self):
        p = guarded("guard-lift-unbanned", dict(FAST, auth_delay=0, ban_threshold=3))
        with p:
            c = tls_session("127.0.0.23", p.port)
            for i in range(2):
                self.assertEqual(timed_auth(c, "mallory", "pw%d" % i)[0], 535)
            r = subproxy_cli(p, "-u", "127.0.0.23")
            self.assertEqual(r.returncode, 1)
            # The count of 2 stands: the next failure is the third and bans.
            self.assertEqual(timed_auth(c, "mallory", "pw2")[0], 535)
            c.close()
            self.assertTrue(p.wait_log("ban: 3 AUTH failures from 127.0.0.23"))
            self.assertEqual(r.stdout, "error: 127.0.0.23 is not banned; nothing changed\n")
        # The same offline, on the state file.
        with open(p.config["guard"]["state_file"], "w") as f:
            f.write("addr 127.0.0.24 2 %d\n" % int(time.time()))
        before = open(p.config["guard"]["state_file"]).read()
        r = subproxy_cli(p, "-u", "127.0.0.24")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "error: 127.0.0.24 is not banned; nothing changed\n")
        self.assertEqual(open(p.config["guard"]["state_file"]).read(), before)

    def test_sighup_applies_the_new_policy_and_keeps_the_bans(self):
        with guarded("guard-reload", dict(FAST, auth_delay=0, ban_threshold=1)) as p:
            c = tls_session("127.0.0.16", p.port)
            self.assertLess(timed_auth(c, "eve", "pw")[2], 0.25)
            c.close()
            self.assertTrue(p.wait_log("ban: 1 AUTH failures from 127.0.0.16"))
            p.config["guard"].update(auth_delay=0.5, auth_delay_max=0.5, ban_threshold=3)
            p.write_config()
            p.proc.send_signal(signal.SIGHUP)
            self.assertTrue(p.wait_log("reload done"))
            self.assertEqual(refused_reply("127.0.0.16", p.port)[0], 421)   # still banned
            c = tls_session("127.0.0.17", p.port)
            self.assertGreaterEqual(timed_auth(c, "eve", "pw")[2], 0.48)    # the new delay
            c.close()
            self.assertEqual(refused_reply("127.0.0.17", p.port)[0], 220)   # the new threshold

    def test_close_action_and_ipv6_prefix_from_a_saved_state(self):
        port = h.free_port()
        p = guarded("guard-close", dict(FAST, ban_action="close"), port=port,
                    listen=[{"address": "127.0.0.1", "port": port}, {"address": "::1", "port": port}])
        until = int(time.time()) + 600
        with open(p.config["guard"]["state_file"], "w") as f:
            # ::1 falls in ::/64: the ban is on the prefix, as every IPv6 key is.
            f.write("# hand-written\nban ::/64 %d 9\nban 127.0.0.5 %d 9\nban 127.0.0.6 %d 9\ngarbage\n"
                    % (until, until, int(time.time()) - 1))
        with p:
            self.assertTrue(p.wait_log("1 unreadable lines skipped"))
            c = client_from("::1", port, host="::1", family=socket.AF_INET6)
            self.assertTrue(c.closed(5))
            self.assertEqual(c.buf, b"")           # closed at accept, not one byte
            c.close()
            c = client_from("127.0.0.5", port)
            self.assertTrue(c.closed(5))
            self.assertEqual(c.buf, b"")
            c.close()
            self.assertEqual(refused_reply("127.0.0.6", port)[0], 220)   # that ban had expired
            self.assertTrue(p.wait_log("ban: connection refused, ::/64 is banned for another"))


class PerAddressLimits(unittest.TestCase):
    def test_sessions_per_client_and_connection_rate(self):
        guard = dict(FAST, max_sessions_per_client=2, connection_rate=5, connection_rate_window=60)
        with guarded("guard-limits", guard) as p:
            a = [client_from("127.0.0.7", p.port) for _ in range(2)]
            for c in a:
                self.assertEqual(c.reply()[0], 220)
            code, text, closed = refused_reply("127.0.0.7", p.port)
            self.assertEqual((code, text), (421, "4.7.0 proxy.test Error: too many connections from your "
                                                 "address, try again later"))
            self.assertTrue(closed)
            self.assertEqual(refused_reply("127.0.0.8", p.port)[0], 220)   # another address
            a[0].cmd("QUIT")
            a[0].close()
            time.sleep(0.3)
            self.assertEqual(refused_reply("127.0.0.7", p.port)[0], 220)   # a slot is free again
            a[1].close()
            self.assertRegex(p.log_text(), r"warning: \[127\.0\.0\.7\]:\d+: limit: 2 sessions open from "
                                           r"127\.0\.0\.7 \(guard\.max_sessions_per_client=2\); connection refused")
            # Rate: 127.0.0.9 may connect 5 times in 60 s; the 6th is refused.
            for _ in range(5):
                self.assertEqual(refused_reply("127.0.0.9", p.port)[0], 220)
            self.assertEqual(refused_reply("127.0.0.9", p.port)[0], 421)
            self.assertTrue(p.wait_log("limit: connection rate 6 in 60s from 127.0.0.9 (guard.connection_rate=5); "
                                       "connection refused"))

    def test_trusted_networks_are_exempt(self):
        guard = dict(FAST, auth_delay=1.0, auth_delay_max=1.0, ban_threshold=2, trusted_networks=["127.0.0.10/31"])
        with guarded("guard-trusted", guard) as p:
            c = tls_session("127.0.0.11", p.port)
            for i in range(3):
                code, _, took = timed_auth(c, "alice", "x%d" % i)
                self.assertEqual(code, 535)
                self.assertLess(took, 0.5)
            c.close()
            self.assertEqual(refused_reply("127.0.0.11", p.port)[0], 220)
            self.assertNotIn("ban:", p.log_text())


class Fail2ban(unittest.TestCase):
    """The shipped filter, run by the real fail2ban-regex on what subproxy logged."""

    def setUp(self):
        self.filter = h.fail2ban_filter("subproxy-auth")
        if not self.filter:
            self.skipTest("fail2ban-regex not installed (make deps)")
        self.conf = os.path.dirname(os.path.dirname(self.filter))

    def regex(self, logfile, mode=None, out=None):
        return h.fail2ban_regex(logfile, self.filter + ("[mode=%s]" % mode if mode else ""), out)

    def test_filter_matches_the_lines_subproxy_logged(self):
        guard = dict(FAST, auth_delay=0.05, auth_delay_max=0.1, ban_threshold=3)
        with guarded("guard-f2b", guard) as p:
            c = tls_session("127.0.0.12", p.port)
            for i, mech in enumerate(("PLAIN", "LOGIN", "CRAM-MD5")):
                self.assertEqual(timed_auth(c, "user%d" % i, "pw", mech)[0], 535)
            c.close()
            self.assertTrue(p.wait_log("banned for 600s"))
            self.assertEqual(refused_reply("127.0.0.12", p.port)[0], 421)
            honest_relay(p.port)      # a success and its lines must not match
            self.assertTrue(p.wait_log("ban: connection refused"))
        syslog = os.path.join(self.conf, "mail.log")
        lines = h.as_syslog(p, syslog)
        failures = sum("authentication failed" in l for l in lines)
        bans = sum(bool(re.search(r": ban: ", l)) for l in lines)
        self.assertEqual(failures, 3)
        self.assertEqual(bans, 2)            # the ban itself and one refused connection
        self.assertEqual(self.regex(syslog), failures)
        self.assertEqual(self.regex(syslog, "ban"), bans)
        self.assertEqual(self.regex(syslog, "aggressive"), failures + bans)
        self.assertEqual(set(self.regex(syslog, out="ip")), {"127.0.0.12"})
        self.assertEqual(self.regex(syslog, out="user"), ["user0", "user1", "user2"])
        print("\n  fail2ban-regex: %d of %d logged lines matched (auth), %d (ban)"
              % (failures, len(lines), bans))

    def test_shipped_samples_match_their_failjson(self):
        samples = os.path.join(h.REPO, "examples", "fail2ban", "logs", "subproxy-auth")
        expected = 0
        for line in open(samples):
            if line.startswith("# failJSON:"):
                expected += json.loads(line.split(":", 1)[1])["match"]
        self.assertGreater(expected, 0)
        self.assertEqual(self.regex(samples), expected)
        jail = open(os.path.join(h.REPO, "examples", "fail2ban", "jail.d", "subproxy-auth.conf")).read()
        self.assertEqual(len(re.findall(r"(?m)^enabled\s*=\s*false$", jail)), len(re.findall(r"(?m)^\[", jail)))


if __name__ == "__main__":
    unittest.main()
