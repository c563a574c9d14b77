"""Compromised accounts (issue 12) seen whole by several gateways (issue 11): two subproxy
instances sharing one real redis-server (test_shared_state.Redis: a unix socket in a temp dir,
the ACL user of subproxy(8)) and the real Postfix MSA.

(a) places: logins from addresses on A and other addresses on B, each gateway below
    places.max_addresses, flag the account on both once the fleet's count passes it; with
    action "refuse" B refuses it; `subproxy -A` on A clears it everywhere and B admits it;
(b) sending limits: messages through A and through B count together, 451 4.7.1 past the
    limit in total on either, another user unaffected, nothing past the limit at the MSA;
(c) Redis stopped: logins and sending go on with this gateway's own counts;
and no customer's password is anywhere in Redis (its keys, values and append-only file)."""
import os
import re
import subprocess
import time
import unittest
import urllib.request

import harness as h
from test_accounts import login_from, run
from test_guard import subproxy_cli
from test_shared_state import PASSWORD, Redis, cli_without_daemon, wait_for

CONTACT = "Call the help desk at 0800 555 0100."


def gateway(name, redis, accounts):
    p = h.Proxy(name=name)
    p.status_port = h.free_port()
    p.config["accounts"] = dict({"state_file": os.path.join(p.dir, "accounts.state"), "contact": CONTACT},
                                **accounts)
    p.config["guard"] = dict(p.config["guard"], control_socket=os.path.join(p.dir, "control.sock"))
    p.config["status"] = {"port": p.status_port}
    p.config["state"] = {"backend": "redis", "address": redis.socket, "username": "subproxy",
                         "password": PASSWORD, "command_timeout": 300, "connect_timeout": 300}
    return p


def metric(p, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % p.status_port, timeout=5) as r:
        text = r.read().decode()
    m = re.search(r"(?m)^%s (\S+)$" % re.escape(name), text)
    return float(m.group(1)) if m else None


def login_code(p, source, user="alice"):
    c, code, lines = login_from(p.port, source, user, h.USERS[user])
    c.close()
    return code, lines


def mail(c, subject, sender="alice@example.com"):
    """One message on a logged-in client: the MAIL reply, or the final one when MAIL is accepted."""
    code, lines = c.cmd("MAIL FROM:<%s>" % sender)
    if code != 250:
        return code, lines
    assert c.cmd("RCPT TO:<bob@example.com>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(h.message(subject, sender=sender) + b".\r\n")
    return c.reply()


class Fleet:
    """Two gateways with `ACCOUNTS` and one Redis for the class (a mixin: not a test itself)."""
    ACCOUNTS = {}

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis().start()
        cls.a = cls.b = None
        try:
            cls.a = gateway("acct-fleet-a", cls.redis, cls.ACCOUNTS).start()
            cls.b = gateway("acct-fleet-b", cls.redis, cls.ACCOUNTS).start()
            for p in (cls.a, cls.b):
                assert p.wait_log("connected to Redis subscription"), p.log_text()
        except BaseException:
            cls.tearDownClass()   # not called when setUpClass fails: stop what started
            raise

    @classmethod
    def tearDownClass(cls):
        for p in (cls.a, cls.b):
            if p:
                p.stop()
        cls.redis.stop()

    def test_9_no_password_in_redis(self):
        """Every key and value, then the append-only file on disk: no customer's password."""
        cli = lambda *args: subprocess.run(["redis-cli", "-s", self.redis.socket] + list(args), capture_output=True,
                                           timeout=10, check=True).stdout
        text = b""
        for key in cli("--scan").split(b"\n"):
            kind = cli("TYPE", key).strip().decode() if key else "none"
            read = {"string": ["GET"], "hash": ["HGETALL"], "zset": ["ZRANGE", "0", "-1", "WITHSCORES"],
                    "set": ["SMEMBERS"], "list": ["LRANGE", "0", "-1"]}.get(kind)
            if read:   # "none": expired meanwhile
                text += key + b"\n" + cli(read[0], key, *read[1:])
        self.assertIn(b"subproxy:acct:", text)   # the accounts are there, with their user names
        on_disk = b""
        for root, _, files in os.walk(self.redis.dir):
            for name in files:
                path = os.path.join(root, name)
                if name != "redis.conf" and os.path.isfile(path):   # redis.conf: the ACL user's password
                    with open(path, "rb") as f:
                        on_disk += f.read()
        self.assertIn(b"acct:", on_disk)
        for secret in h.USERS.values():
            self.assertNotIn(secret.encode(), text)
            self.assertNotIn(secret.encode(), on_disk)


class ManyPlacesAcrossGateways(Fleet, unittest.TestCase):
    ACCOUNTS = {"places": {"max_addresses": 2, "max_destinations": 0, "action": "refuse", "refuse_code": 454}}

    def test_1_flagged_on_both_refused_on_b_cleared_from_a(self):
        a, b = self.a, self.b
        for source in ("127.0.0.2", "127.0.0.3"):          # A alone: 2, not past the maximum
            self.assertEqual(login_code(a, source)[0], 235)
        # B alone sees one place; the fleet three.  The login that crosses the line gets in
        # (decisions never wait for Redis); the flag follows within a round trip.
        self.assertEqual(login_code(b, "127.0.0.4")[0], 235)
        started = time.monotonic()
        while "raised by another gateway" not in a.log_text() and time.monotonic() - started < 5:
            time.sleep(0.002)
        self.assertIn("raised by another gateway", a.log_text())
        print("\n  B's fleet count flags the account on A %.1f ms after B's 235" % ((time.monotonic() - started) * 1000))
        self.assertIn("accounts: flagged many_addresses", b.log_text())
        self.assertRegex(b.log_text(), r"\[127\.0\.0\.4\]:\d+: accounts: flagged many_addresses: 3 addresses in "
                                       r"86400s on all gateways \(max 2\): 127\.0\.0\.4, 127\.0\.0\.[23], "
                                       r"127\.0\.0\.[23], sasl_username=alice")
        # A hears of it on the events channel: refused there too, as on B.
        self.assertEqual(login_code(a, "127.0.0.2")[0], 454)
        code, lines = login_code(b, "127.0.0.4")
        self.assertEqual(code, 454, lines)
        self.assertIn("4.7.0 Account suspended", " ".join(lines))
        self.assertIn(CONTACT, " ".join(lines))
        self.assertEqual(login_code(b, "127.0.0.4", "bob")[0], 235)   # only alice
        self.assertIn("accounts: many_addresses flag on alice raised by another gateway", a.log_text())
        self.assertNotIn("accounts: flagged many_addresses", a.log_text())   # one fail2ban line, on B
        self.assertEqual(metric(b, 'subproxy_account_flags_total{reason="many_addresses"}'), 1)
        self.assertEqual(metric(a, 'subproxy_account_flags_total{reason="many_addresses"}'), 0)
        for p in (a, b):   # -a on either: the fleet's flags
            code, out, err = run(p, "-a")
            self.assertEqual(code, 0, err)
            self.assertRegex(out, r"(?m)^alice many_addresses first=\S+ last=\S+ count=3 3 addresses in 86400s on "
                                  r"all gateways")
            self.assertNotIn("bob", out)

        # -A on A: cleared on every gateway, with the fleet's places (else the next login
        # would flag it again at once).
        code, out, err = run(a, "-A", "alice")
        self.assertEqual((code, out), (0, "cleared alice on every gateway\n"), err)
        self.assertEqual(self.redis.cli("EXISTS", "subproxy:acct:addr:alice").strip(), "0")
        self.assertEqual(self.redis.cli("HLEN", "subproxy:acct:flags").strip(), "0")
        self.assertTrue(wait_for(lambda: login_code(b, "127.0.0.5")[0] == 235, 5), b.log_text())
        self.assertIn("accounts: flags on alice cleared by the operator on another gateway", b.log_text())
        self.assertEqual(run(b, "-a")[1], "")
        code, out, err = run(b, "-A", "alice")
        self.assertEqual(code, 1)
        self.assertIn("not flagged", out + err)

    def test_2_redis_stopped_logins_go_on_with_local_counts(self):
        self.redis.stop()
        try:
            started = time.monotonic()
            # bob: two places on A (its own maximum), one on B: the fleet would be three.
            for p, source in ((self.a, "127.0.0.6"), (self.a, "127.0.0.7"), (self.b, "127.0.0.8")):
                self.assertEqual(login_code(p, source, "bob")[0], 235)
            self.assertLess(time.monotonic() - started, 10)
            self.assertEqual(metric(self.a, "subproxy_state_backend_up"), 0)
            # This gateway's own count still decides: a third place on A is refused.
            self.assertEqual(login_code(self.a, "127.0.0.9", "bob")[0], 454)
            code, out, err = run(self.a, "-a")   # -a: this gateway's own list, and says so
            self.assertEqual(code, 0, err)
            self.assertRegex(out, r"(?m)^bob many_addresses .*3 addresses in 86400s \(max 2\)")
            self.assertIn("did not answer: this gateway's own list", out)
        finally:
            self.redis.start()
        self.assertTrue(self.a.wait_log("is back after"), self.a.log_text())
        # The flag raised meanwhile was kept and reaches the fleet: B refuses bob too.
        self.assertTrue(wait_for(lambda: login_code(self.b, "127.0.0.8", "bob")[0] == 454, 5), self.b.log_text())
        self.assertEqual(run(self.a, "-A", "bob")[1], "cleared bob on every gateway\n")


    def test_3_without_a_daemon_a_and_A_go_to_redis(self):
        self.redis.cli("HSET", "subproxy:acct:flags", "carol many_addresses", "100 200 3 3%20addresses")
        cli = cli_without_daemon(self.a)
        r = cli("-a")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^carol many_addresses first=\S+ last=\S+ count=3 3 addresses$")
        r = cli("-A", "Carol")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cleared carol on every gateway (in Redis at", r.stdout)
        self.assertEqual(self.redis.cli("HLEN", "subproxy:acct:flags").strip(), "0")
        r = cli("-A", "carol")
        self.assertEqual(r.returncode, 1)
        self.assertIn("error: carol is not flagged; nothing changed", r.stderr)

    def test_3b_a_flag_this_version_cannot_read_hides_no_other(self):
        # A newer subproxy on another gateway wrote a reason this one does not know.
        self.redis.cli("HSET", "subproxy:acct:flags", "erin from_the_future", "100 200 3 x",
                       "frank many_addresses", "100 200 4 4%20addresses")
        try:
            for who, lister in (("daemon", lambda: subproxy_cli(self.a, "-a")),
                                ("no daemon", lambda: cli_without_daemon(self.a)("-a"))):
                with self.subTest(who):
                    r = lister()
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertRegex(r.stdout, r"(?m)^frank many_addresses first=\S+ last=\S+ count=4 4 addresses$")
                    self.assertIn("# 1 more flags in Redis that this version cannot read", r.stdout)
                    self.assertNotIn("did not answer", r.stdout)
        finally:
            self.redis.cli("HDEL", "subproxy:acct:flags", "erin from_the_future", "frank many_addresses")

    def test_4_a_clear_made_while_b_was_away_reaches_b_when_it_is_back(self):
        """B down (maintenance) while the operator clears on A: B's state file still holds the
        flag, and B missed the message.  Back, it reads the fleet's flags: the one Redis no
        longer lists was cleared meanwhile, and goes here too (as a lifted ban does), with the
        places that raised it; else B alone would refuse the account, with nothing in `-a`."""
        a, b = self.a, self.b
        codes = [login_code(b, source, "bob")[0] for source in ("127.0.0.12", "127.0.0.13", "127.0.0.14")]
        self.assertEqual(codes, [235, 235, 454])   # B alone: the third place is past its maximum
        self.assertTrue(wait_for(lambda: login_code(a, "127.0.0.12", "bob")[0] == 454, 5), a.log_text())
        b.stop()
        code, out, err = run(a, "-A", "bob")
        self.assertEqual((code, out), (0, "cleared bob on every gateway\n"), err)
        b.start()
        # The restarted B refuses until its Redis connection is up, then admits bob (from a
        # fourth address: the places went with the flag).
        self.assertTrue(wait_for(lambda: login_code(b, "127.0.0.15", "bob")[0] == 235, 5), b.log_text())
        self.assertIn("accounts: flags synchronised with Redis: 0 from other gateways, 1 cleared elsewhere",
                      b.log_text())
        self.assertEqual(run(b, "-a")[1], "")
        self.assertEqual(login_code(a, "127.0.0.12", "bob")[0], 235)

    def test_5_a_name_with_a_space_clears_no_other_account(self):
        """`-A "carol x"` names no account (-a prints a space as %20): an error, as without Redis,
        and never a clear of carol, the first word."""
        self.redis.cli("HSET", "subproxy:acct:flags", "carol many_addresses", "100 200 3 3%20addresses")
        code, out, err = run(self.a, "-A", "carol x")
        self.assertEqual(code, 1, out)
        self.assertIn("error:", out + err)
        self.assertEqual(self.redis.cli("HLEN", "subproxy:acct:flags").strip(), "1")
        self.assertEqual(run(self.a, "-A", "carol")[:2], (0, "cleared carol on every gateway\n"))

    def test_6_a_clear_costs_redis_the_same_however_many_accounts_are_flagged(self):
        """200000 flagged accounts (weak passwords, say): `-A` of one must not scan them all in one
        script, which stalls Redis for every gateway (past state.command_timeout: all of them
        drop their connection and read the whole list back).  Redis' slow log says."""
        many, chunk = 200000, 10000   # in chunks: one long script would time the gateways out
        fill = "for i = ARGV[1], ARGV[2] do redis.call('HSET', KEYS[1], 'u' .. i .. ' weak_password', '1 2 0 x') end"
        empty = "for i = ARGV[1], ARGV[2] do redis.call('HDEL', KEYS[1], 'u' .. i .. ' weak_password') end"
        for first in range(1, many, chunk):
            self.redis.cli("EVAL", fill, "1", "subproxy:acct:flags", str(first), str(first + chunk - 1))
        try:
            self.redis.cli("CONFIG", "SET", "slowlog-log-slower-than", "20000")   # 20 ms
            self.redis.cli("SLOWLOG", "RESET")
            self.assertEqual(run(self.a, "-A", "u1")[:2], (0, "cleared u1 on every gateway\n"))
            self.assertEqual(self.redis.cli("HLEN", "subproxy:acct:flags").strip(), str(many - 1))
            slow = self.redis.cli("SLOWLOG", "GET", "10")
            print("\n  slow log after -A with %d accounts flagged: %r" % (many, slow[:300]))
            self.assertNotIn("EVAL", slow.upper())
        finally:
            self.redis.cli("CONFIG", "SET", "slowlog-log-slower-than", "10000")
            for first in range(1, many, chunk):
                self.redis.cli("EVAL", empty, "1", "subproxy:acct:flags", str(first), str(first + chunk - 1))


class SendingLimitsAcrossGateways(Fleet, unittest.TestCase):
    ACCOUNTS = {"limits": {"window": 3600, "messages": 3, "recipients": 100}}

    def test_1_messages_through_a_and_b_count_together(self):
        a, b = self.a, self.b
        before = len(h.msa().messages())
        ca = h.login(a.port, "alice")
        for i in range(2):
            self.assertEqual(mail(ca, "fleet-limit-a-%d" % i)[0], 250)
        cb = h.login(b.port, "alice")        # B reads the fleet's count (2) at the login
        self.assertEqual(mail(cb, "fleet-limit-b-0")[0], 250)   # 3: the limit, in total
        code, lines = mail(cb, "fleet-limit-b-1")
        self.assertEqual(code, 451, lines)
        self.assertIn("4.7.1 Sending limit reached", " ".join(lines))
        self.assertIn("3 messages per 1 hour", " ".join(lines))
        # A's session, open all along, heard that the fleet's count reached the limit (B's
        # script announced it; one round trip to Redis and back).
        time.sleep(0.3)
        code, lines = mail(ca, "fleet-limit-a-2")
        self.assertEqual(code, 451, lines)
        ca.close()
        cb.close()
        c = h.login(a.port, "alice")         # a new session on A too
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.com>")[0], 451)
        c.close()
        for p in (a, b):                     # bob is unaffected on both
            c = h.login(p.port, "bob")
            self.assertEqual(h.send_message(c, "fleet-limit-bob", sender="bob@example.com")[0], 250)
            c.close()
        h.delivered_since(before, 5)
        time.sleep(1)
        self.assertEqual(len(h.msa().messages()), before + 5, "a message past the limit reached the MSA")
        self.assertIn("accounts: sending limit reached: messages=3 limit=3 window=3600s, sasl_username=alice",
                      b.log_text())
        self.assertIn("accounts: sending limit reached: messages=3 limit=3 window=3600s, sasl_username=alice",
                      a.log_text())
        for p in (a, b):
            code, out, err = run(p, "-a")
            self.assertRegex(out, r"(?m)^alice sending_limit first=\S+ last=\S+ count=3 messages=3 limit=3")
        self.assertEqual(run(a, "-A", "alice")[1], "cleared alice on every gateway\n")

    def test_2_redis_stopped_sending_goes_on_with_local_counts(self):
        self.redis.stop()
        try:
            before = len(h.msa().messages())
            started = time.monotonic()
            # bob sent 1 through A and 1 through B: B's own count is 1 and the fleet's figure it
            # heard last is 2.  With Redis down B goes on with what it knows: 2 more, then 451.
            c = h.login(self.b.port, "bob")
            for i in range(2):
                self.assertEqual(mail(c, "fleet-down-%d" % i, "bob@example.com")[0], 250)
                # The message's update goes to the control loop, which answers "no reply" at
                # once; until then it counts on top of the fleet's figure (2 + 1 = 3: a 451).
                time.sleep(0.2)
            self.assertEqual(c.cmd("MAIL FROM:<bob@example.com>")[0], 451)
            c.close()
            self.assertLess(time.monotonic() - started, 10)
            h.delivered_since(before, 2)
        finally:
            self.redis.start()
        self.assertTrue(self.b.wait_log("is back after"), self.b.log_text())


if __name__ == "__main__":
    unittest.main()
