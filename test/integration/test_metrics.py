"""Metrics as Prometheus users expect them (issue 9, item 5).  /metrics is scraped right after
start (every counter at 0) and after a scripted set of sessions: a relayed message (through an
MSA failover), a wrong password held back by the guard, a spambot-trap detection that bans, the
banned bot refused, a DNSBL-listed client.  Every scrape must pass `promtool check metrics`
(the Prometheus project's own linter) without a word, is parsed by prometheus_client, and its
values are checked against what the test did, histogram counts and the process_* figures
included.  Every metric is in subproxy(8)'s table, and nothing else is."""
import json
import os
import re
import socket
import subprocess
import time
import unittest
import urllib.request
import uuid

import harness as h
import test_dnsbl as dnsbl  # the dnsmasq serving the test zones, and their records

PARSE = r"""
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    out[family.name] = {"type": family.type, "help": family.documentation,
                        "samples": [[s.name, s.labels, s.value] for s in family.samples]}
print(json.dumps(out))
"""

BAN_TIME = 3        # guard.ban_time: long enough to refuse the bot again, short enough to expire
AUTH_DELAY = 1.0    # guard.auth_delay: the 535 is held this long


def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def promtool(text):
    """(exit code, what promtool printed) for `promtool check metrics` on the exposition text."""
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def parse(text):
    """Families by name (prometheus_client's: counters without _total) -> type, help, samples
    [name, labels, value]; parsed by the system python's prometheus_client."""
    r = subprocess.run(["/usr/bin/python3", "-c", PARSE], input=text, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError("prometheus_client could not parse /metrics:\n" + r.stderr + "\n" + text)
    return json.loads(r.stdout)


def value(families, name, **labels):
    """The value of the one sample `name` with exactly `labels` (sample names keep _total)."""
    found = [v for f in families.values() for n, l, v in f["samples"] if n == name and l == labels]
    if len(found) != 1:
        raise AssertionError("%d samples %s%s" % (len(found), name, labels))
    return found[0]


def declared_types(text):
    """{family name as written: type} from the # TYPE lines."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def documented_metrics():
    """The metric names of subproxy(8)'s table (STATUS AND METRICS)."""
    with open(os.path.join(h.REPO, "man", "subproxy.8")) as f:
        man = f.read()
    section = man[man.index(".SH STATUS AND METRICS"):man.index(".SH MIGRATION REPORT")]
    table = section[section.index(".TS"):section.index(".TE")]
    return set(re.findall(r"^((?:subproxy|process)_[a-z_]+)$", table, re.M))


def connect(port, source):
    c = h.RawClient.__new__(h.RawClient)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    c.buf = b""
    return c


def proc_stat(pid):
    """utime + stime (seconds) and starttime (seconds after boot) of `pid`, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, int(fields[19]) / ticks


def boot_time():
    with open("/proc/stat") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("btime "))


class Metrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = dnsbl.Dnsmasq()
        cls.status = h.free_port()
        p = h.Proxy(name="metrics-promtool", upstream={
            # Nothing listens on 127.0.0.2 (the MSA is on 127.0.0.1 only): every MSA session
            # fails over once.  server_name keeps the certificate check meaningful.
            "host": ["127.0.0.2", "127.0.0.1"]}, extra={
            "status": {"address": "127.0.0.1", "port": cls.status},
            "guard": {"auth_delay": AUTH_DELAY, "auth_delay_max": AUTH_DELAY, "ban_threshold": 0,
                      "ban_time": BAN_TIME, "max_sessions_per_client": 0},
            "trap": {"no_auth": "ban"},
            "dnsbl": {"zones": dnsbl.ZONES, "threshold": 2, "decision": "connect",
                      "nameserver": "127.0.0.1:%d" % cls.dns.port, "timeout": 3}})
        # Ready when the status endpoint answers: connecting to the SMTP listener would open a
        # session before the first scrape.
        p.ready_port = cls.status
        cls.proxy = p.start()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        cls.dns.stop()

    def scrape_checked(self):
        ctype, text = scrape(self.status)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        code, said = promtool(text)
        self.assertEqual((code, said), (0, ""), text)
        return text, parse(text)

    def wait_idle(self):
        deadline = time.monotonic() + 10
        while True:
            text, m = self.scrape_checked()
            if value(m, "subproxy_open_sessions") == 0 or time.monotonic() > deadline:
                return text, m
            time.sleep(0.1)

    def test_1_every_counter_at_zero_right_after_start(self):
        text, m = self.scrape_checked()
        self.assertEqual(value(m, "subproxy_build_info", version="0.1.0"), 1)
        self.assertEqual(m["subproxy_build_info"]["type"], "gauge")
        types = declared_types(text)
        self.assertNotIn("subproxy_uptime_seconds", types)
        for name in ("process_start_time_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes",
                     "process_virtual_memory_bytes", "process_open_fds", "process_max_fds"):
            self.assertIn(name, types)
        zero = 0
        for family in m.values():
            for name, labels, v in family["samples"]:
                if name == "subproxy_state_backend_up":
                    self.assertEqual(v, 1)   # the local back end is always up (Redis: test_shared_state.py)
                    continue
                if name.startswith("process_") or name in ("subproxy_build_info", "subproxy_up"):
                    continue
                self.assertEqual(v, 0, "%s%s" % (name, labels))
                zero += 1
        self.assertGreater(zero, (3 + 8) * (16 + 2))   # the histograms' buckets, sums and counts too
        # The series alerts are written against exist before their first event.
        for mech in ("PLAIN", "LOGIN", "CRAM-MD5"):
            value(m, "subproxy_auth_failures_total", mechanism=mech)
        for signal in ("pregreet", "no_auth", "fanout", "non_smtp", "bare_newline", "dnsbl"):
            value(m, "subproxy_trap_detections_total", signal=signal)
        for kind in ("connect", "tls", "verify", "protocol", "refused", "lost", "timeout"):
            value(m, "subproxy_upstream_errors_total", kind=kind)
        for result in ("success", "failure", "temporary"):
            value(m, "subproxy_auth_duration_seconds_count", result=result)
            value(m, "subproxy_auth_duration_seconds_bucket", result=result, le="+Inf")
        for command in ("mail", "rcpt", "data", "end_of_data", "rset", "noop", "quit", "auth"):
            value(m, "subproxy_upstream_reply_duration_seconds_count", command=command)
        for zone in ("testbl", "mask.test", "wl.test"):
            for kind in ("queries", "hits", "errors"):
                value(m, "subproxy_dnsbl_%s_total" % kind, zone=zone)
        for port in ("25", "465"):
            value(m, "subproxy_migration_submissions_total", port=port)
        for counter in ("subproxy_sessions_total", "subproxy_bans_total", "subproxy_upstream_failovers_total",
                        "subproxy_ban_refusals_total", "subproxy_relayed_message_bytes_total"):
            self.assertEqual(value(m, counter), 0, counter)
        self.assertEqual(value(m, "subproxy_active_bans"), 0)
        # Documented, all of them and no more.
        self.assertEqual(set(types), documented_metrics())

    def test_2_values_match_what_the_sessions_did(self):
        proxy = self.proxy
        # A customer: PLAIN, one message relayed (the MSA session fails over to 127.0.0.1).
        before = len(h.msa().messages())
        c = h.login(proxy.port, "alice", mech="PLAIN")
        c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
        self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
        body = h.message("metrics " + uuid.uuid4().hex[:8])
        c.send(body + b".\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.close()
        h.delivered_since(before)
        # A wrong password: 535, held back by the guard for AUTH_DELAY.
        c = h.RawClient(proxy.port)
        c.reply()
        c.cmd("EHLO customer.example")
        c.starttls()
        c.cmd("EHLO customer.example")
        started = time.monotonic()
        self.assertEqual(h.auth(c, "PLAIN", "bob", "wrong")[0], 535)
        held = time.monotonic() - started
        self.assertGreaterEqual(held, AUTH_DELAY * 0.9)
        c.cmd("QUIT")
        c.close()
        # A bot: MAIL without AUTH is the no_auth trap signal, which bans; it comes back refused.
        bot = connect(proxy.port, "127.0.0.8")
        self.assertEqual(bot.reply()[0], 220)
        bot.cmd("EHLO bot.example")
        self.assertEqual(bot.cmd("MAIL FROM:<spam@example.com>")[0], 554)
        self.assertTrue(bot.closed())
        again = connect(proxy.port, "127.0.0.8")
        self.assertEqual(again.reply()[0], 421)
        banned_at = time.monotonic()
        again.close()
        # A client bl.test lists (dnsbl.decision "connect"): refused at once, the dnsbl signal.
        listed = connect(proxy.port, "127.0.0.2")
        self.assertEqual(listed.reply()[0], 554)
        self.assertTrue(listed.closed())

        text, m = self.wait_idle()
        self.assertEqual(value(m, "subproxy_open_sessions"), 0)
        self.assertEqual(m["subproxy_sessions"]["type"], "counter")
        self.assertEqual(value(m, "subproxy_sessions_total"), 4)           # alice, bob, bot, listed
        self.assertEqual(value(m, "subproxy_refused_connections_total"), 1)  # the bot's return
        self.assertEqual(value(m, "subproxy_tls_handshakes_total"), 2)
        self.assertEqual(value(m, "subproxy_auth_successes_total", mechanism="PLAIN"), 1)
        self.assertEqual(value(m, "subproxy_auth_failures_total", mechanism="PLAIN"), 1)
        self.assertEqual(value(m, "subproxy_auth_successes_total", mechanism="LOGIN"), 0)
        self.assertEqual(value(m, "subproxy_auth_delayed_replies_total"), 1)
        self.assertEqual(value(m, "subproxy_auth_temporary_failures_total"), 0)
        # The message: its size as the proxy logged it.
        size = int(re.search(r"message sasl_username=alice .*status=sent .*from=<alice@example.com> .*size=(\d+)", proxy.log_text()).group(1))
        self.assertEqual(size, len(body))
        self.assertEqual(value(m, "subproxy_relayed_messages_total"), 1)
        self.assertEqual(value(m, "subproxy_rejected_messages_total"), 0)
        self.assertEqual(value(m, "subproxy_relayed_message_bytes_total"), size)
        self.assertEqual(value(m, "subproxy_upstream_failovers_total"), 1)
        for kind in ("connect", "tls", "verify", "protocol", "refused", "lost", "timeout"):
            self.assertEqual(value(m, "subproxy_upstream_errors_total", kind=kind), 0, kind)
        # The guard and the trap.
        self.assertEqual(value(m, "subproxy_bans_total"), 1)
        self.assertEqual(value(m, "subproxy_active_bans"), 1)
        self.assertEqual(value(m, "subproxy_ban_refusals_total"), 1)
        self.assertEqual(m["subproxy_trap_detections"]["type"], "counter")
        for signal in ("pregreet", "fanout", "non_smtp", "bare_newline"):
            self.assertEqual(value(m, "subproxy_trap_detections_total", signal=signal), 0, signal)
        self.assertEqual(value(m, "subproxy_trap_detections_total", signal="no_auth"), 1)
        self.assertEqual(value(m, "subproxy_trap_detections_total", signal="dnsbl"), 1)
        # DNSBL: four sessions looked up in each zone; bl.test (rule "testbl") listed one.
        for zone in ("testbl", "mask.test", "wl.test"):
            self.assertEqual(value(m, "subproxy_dnsbl_queries_total", zone=zone), 4, zone)
            self.assertEqual(value(m, "subproxy_dnsbl_errors_total", zone=zone), 0, zone)
        self.assertEqual(value(m, "subproxy_dnsbl_hits_total", zone="testbl"), 1)
        self.assertEqual(value(m, "subproxy_dnsbl_hits_total", zone="mask.test"), 0)
        self.assertEqual(value(m, "subproxy_dnsbl_hits_total", zone="wl.test"), 0)
        self.assertGreater(value(m, "subproxy_replies_total", **{"class": "2xx"}), 5)
        # The migration report: alice, through the listener's own port (no redirect here).
        self.assertEqual(value(m, "subproxy_migration_submissions_total", port=str(proxy.port)), 1)
        self.assertEqual(value(m, "subproxy_migration_users", port=str(proxy.port)), 1)
        self.assertEqual(value(m, "subproxy_migration_submissions_total", port="25"), 0)

        # AUTH latency: one success, one failure; the guard's hold is not in it.
        self.assertEqual(m["subproxy_auth_duration_seconds"]["type"], "histogram")
        self.assertEqual(value(m, "subproxy_auth_duration_seconds_count", result="success"), 1)
        self.assertEqual(value(m, "subproxy_auth_duration_seconds_count", result="failure"), 1)
        self.assertEqual(value(m, "subproxy_auth_duration_seconds_count", result="temporary"), 0)
        failure = value(m, "subproxy_auth_duration_seconds_sum", result="failure")
        self.assertGreater(failure, 0)
        self.assertLess(failure, AUTH_DELAY * 0.5, "the guard's delay counted as latency")
        self.assertLess(failure, held)
        self.check_buckets(m, "subproxy_auth_duration_seconds", "result")
        # MSA reply latency: the commands alice's session relayed, the end of data on its own.
        self.assertEqual(m["subproxy_upstream_reply_duration_seconds"]["type"], "histogram")
        for command, n in (("mail", 1), ("rcpt", 1), ("data", 1), ("end_of_data", 1), ("quit", 1),
                           ("rset", 0), ("noop", 0), ("auth", 0)):
            self.assertEqual(value(m, "subproxy_upstream_reply_duration_seconds_count", command=command), n, command)
            total = value(m, "subproxy_upstream_reply_duration_seconds_sum", command=command)
            self.assertTrue(0 < total < 30 if n else total == 0, (command, total))
        self.check_buckets(m, "subproxy_upstream_reply_duration_seconds", "command")

        # process_*: the daemon's own figures, as /proc shows them from outside.
        pid = proxy.proc.pid
        cpu_before, start_after_boot = proc_stat(pid)
        _, m = self.scrape_checked()
        cpu_after, _ = proc_stat(pid)
        self.assertAlmostEqual(value(m, "process_start_time_seconds"), boot_time() + start_after_boot, delta=1.5)
        self.assertLessEqual(cpu_before, value(m, "process_cpu_seconds_total"))
        self.assertLessEqual(value(m, "process_cpu_seconds_total"), cpu_after)
        with open("/proc/%d/statm" % pid) as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        self.assertAlmostEqual(value(m, "process_resident_memory_bytes"), rss, delta=rss * 0.25)
        self.assertGreater(value(m, "process_virtual_memory_bytes"), value(m, "process_resident_memory_bytes"))
        # During the scrape the daemon also holds the status connection: one more than now.
        fds = len(os.listdir("/proc/%d/fd" % pid))
        self.assertIn(value(m, "process_open_fds"), (fds, fds + 1))
        with open("/proc/%d/limits" % pid) as f:
            soft = int(next(l for l in f if l.startswith("Max open files")).split()[3])
        self.assertEqual(value(m, "process_max_fds"), soft)

        # /status carries the same counters.
        _, page = scrape(self.status, "/status")
        doc = json.loads(page)["metrics"]
        self.assertEqual(doc["trap_detections"]["no_auth"], 1)
        self.assertEqual(doc["active_bans"], 1)
        self.assertEqual(doc["upstream_failovers"], 1)
        self.assertEqual(doc["dnsbl"]["testbl"], {"queries": 4, "hits": 1, "errors": 0})

        # The ban runs out: the gauge follows, the counter stays.
        time.sleep(max(0, banned_at + BAN_TIME + 0.5 - time.monotonic()))
        _, m = self.scrape_checked()
        self.assertEqual(value(m, "subproxy_active_bans"), 0)
        self.assertEqual(value(m, "subproxy_bans_total"), 1)

    def check_buckets(self, m, name, label):
        """Cumulative buckets, ending in +Inf == count, for every label value."""
        by_label = {}
        for n, labels, v in m[name]["samples"]:
            if n == name + "_bucket":
                by_label.setdefault(labels[label], []).append((float(labels["le"]), v))
        for key, buckets in by_label.items():
            bounds = [b for b, _ in buckets]
            self.assertEqual(bounds, sorted(bounds), key)
            self.assertEqual(bounds[0], 0.001)
            self.assertEqual(bounds[-1], float("inf"))
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), key)
            self.assertEqual(counts[-1], value(m, name + "_count", **{label: key}), key)


if __name__ == "__main__":
    unittest.main()
