"""The documentation matches the code: every configuration key has an example line in
subproxy.conf(5) (test/check-man-examples.py), SIGHUP warns for exactly the keys the RELOAD
table of subproxy.conf(5) says need a restart, the README's short deployment is complete, and
subproxy(8) points only at sections that exist and say what they are pointed at for."""
import os
import re
import signal
import subprocess
import sys
import time
import unittest

import harness as h

MAN8 = os.path.join(h.REPO, "man", "subproxy.8")
MAN5 = os.path.join(h.REPO, "man", "subproxy.conf.5")


def read(path):
    with open(path) as f:
        return f.read()


def section(text, name):
    return text.split("\n.SH %s\n" % name, 1)[1].split("\n.SH ", 1)[0]


def restart_keys_in_man():
    """The keys the RELOAD table lists as needing a restart (one key per row)."""
    table = section(read(MAN5), "RELOAD").split(".TS\n", 1)[1].split(".TE\n", 1)[0]
    return {row.split("\t")[0] for row in table.splitlines() if row.count("\t") == 2 and
            row.split("\t")[1] == "restart"}


class ExampleLines(unittest.TestCase):
    def test_every_config_key_has_an_example_line(self):
        r = subprocess.run([sys.executable, os.path.join(h.REPO, "test", "check-man-examples.py"), h.REPO],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"(\d+) keys, (\d+) with an example line, 0 without", r.stdout)
        self.assertTrue(m, r.stdout)
        self.assertGreater(int(m.group(1)), 100)     # the reader's lists were found


class ReloadWarnings(unittest.TestCase):
    def test_sighup_warns_once_per_key_it_cannot_apply_and_applies_the_rest(self):
        p = h.Proxy(name="reload-keys")
        d = p.dir
        p.config.update({
            "pid_file": os.path.join(d, "subproxy.pid"),
            "status": {"address": "127.0.0.1", "port": h.free_port()},
            "migration": {"state_file": os.path.join(d, "migration.state"), "flush_interval": 60},
            "accounts": {"state_file": os.path.join(d, "accounts.state")},
        })
        p.config["guard"] = dict(p.config["guard"], state_file=os.path.join(d, "guard.state"),
                                 control_socket=os.path.join(d, "control"))
        other_sasl = h.make_sasldb(os.path.join(d, "sasl2"))
        with p:
            warned = []

            def reload(change):
                change(p.config)
                p.write_config()
                offset = len(p.log_text())
                p.proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 10
                while "reload done" not in p.log_text()[offset:] and time.monotonic() < deadline:
                    time.sleep(0.05)
                log = p.log_text()[offset:]
                self.assertIn("reload done", log, log)
                keys = re.findall(r"warning: reload: changes to (\S+) take effect at the next restart\n", log)
                self.assertEqual(len(keys), len(set(keys)), log)       # one line per key
                warned.append(set(keys))
                return log

            def everything(c):
                c["hostname"] = "proxy2.test"                       # applied: no warning
                c["limits"] = dict(c["limits"], max_errors=7)       # applied: no warning
                c["listen"] = [{"address": "127.0.0.1", "port": h.free_port()}]
                c["auth"] = dict(c["auth"], sasl_service="subproxy2", sasl_config_dir=other_sasl,
                                 workers=2, max_workers=3)
                c["log_facility"] = "daemon"
                c["workers"] = 3
                c["log_file"] = os.path.join(d, "other.log")
                c["user"] = "nobody"
                c["group"] = "nogroup"
                c["pid_file"] = os.path.join(d, "other.pid")
                c["status"] = {"address": "127.0.0.2", "port": h.free_port(), "token": "0123456789abcdef01",
                               "max_connections": 4}
                c["guard"] = dict(c["guard"], state_file=os.path.join(d, "g2.state"),
                                  control_socket=os.path.join(d, "control2"))
                c["migration"] = {"state_file": os.path.join(d, "m2.state"), "flush_interval": 30}
                c["accounts"] = {"state_file": os.path.join(d, "a2.state"), "flush_interval": 5}
                # Every key of the group differs from its default (the Redis connections are
                # made once; the daemon stays on its own state).
                c["state"] = {"backend": "redis", "address": "127.0.0.1:6380", "username": "u", "password": "p",
                              "database": 1, "key_prefix": "x:", "connect_timeout": 200, "command_timeout": 200,
                              "replay_limit": 5, "retry_interval": 2}

            reload(everything)
            # Applied at once to new sessions, while the listener kept its old socket.
            c = h.RawClient(p.port)
            self.assertEqual(c.reply(), (220, ["proxy2.test ESMTP"]))
            c.close()

            def backend_and_socket(c):
                c["auth"] = dict(c["auth"], backend="upstream", mechanisms=["PLAIN", "LOGIN"])
                c["upstream"] = dict(c["upstream"], login="none")
                c["status"] = {"socket": os.path.join(d, "status.sock")}

            reload(backend_and_socket)

            def no_status(c):
                del c["status"]

            reload(no_status)

        # Compared with what the daemon started with, not with the last reload: the second
        # reload still names the keys the first one could not apply.
        self.assertTrue({"pid_file", "user", "listen"} <= warned[1], warned)
        self.assertIn("status", warned[2])
        self.assertNotIn("hostname", set().union(*warned))
        self.assertEqual(set().union(*warned), restart_keys_in_man())


class Readme(unittest.TestCase):
    def deployment(self):
        text = read(os.path.join(h.REPO, "README.md"))
        block = re.search(r"## Deploy in \d+ lines\n.*?```\n(.*?)```", text, re.S).group(1)
        return [l for l in block.splitlines() if l and not l.startswith("#")]

    def test_short_deployment_redirects_both_ports_for_both_families(self):
        rules = [re.sub(r"\s+", " ", l) for l in self.deployment() if re.match(r"ip6?tables ", l)]
        for tool in ("iptables", "ip6tables"):
            for port, target in (("25", "10025"), ("465", "10465")):
                self.assertIn("%s -t nat -A PREROUTING -i eth1 -p tcp --dport %s -j REDIRECT --to-ports %s"
                              % (tool, port, target), rules)

    def test_short_deployment_creates_every_directory_before_using_it(self):
        made = set()
        for line in self.deployment():
            for cmd in line.split("&&"):
                words = cmd.split("#")[0].split()
                if words[:2] in (["install", "-d"], ["mkdir", "-p"]):
                    made.update(w for w in words if w.startswith("/"))
                    continue
                for w in words:
                    if w.startswith("/etc/subproxy/") and w.count("/") > 2:
                        self.assertIn(os.path.dirname(w), made, line)


class ManPointers(unittest.TestCase):
    def test_every_section_subproxy8_points_at_exists(self):
        """"see BUGS", "see FAIL2BAN", "(see RUNNING UNDER SYSTEMD, Stop timeout)": within the
        page (subproxy.conf.5's capitals name sections of subproxy(8) or keys)."""
        text = read(MAN8)
        sections = set(re.findall(r"^\.SH (?:\")?([A-Z][A-Z0-9 ]+?)(?:\")?$", text, re.M))
        not_sections = {"TPROXY", "REDIRECT", "DNAT", "FORWARD", "SIGHUP", "SIGTERM"}
        pointed = {n.strip() for n in re.findall(r"\b[Ss]ee\s+(?:\.BR?\s+)?((?:[A-Z][A-Z0-9]{2,} ?)+)\b", text)}
        self.assertIn("FAIL2BAN", pointed)
        for name in pointed - not_sections:
            self.assertIn(name, sections, "subproxy.8 points at a missing section %s" % name)

    def test_tproxy_pointer_to_bugs_finds_tproxy_there(self):
        man = read(MAN8)
        self.assertRegex(man, r"is for TPROXY instead; see\n\.B BUGS\nfor its limits")
        self.assertIn("TPROXY", section(man, "BUGS"))

    def test_no_page_says_t_skips_numeric_listen_addresses(self):
        for path in (MAN8, MAN5):
            flat = re.sub(r"\s+", " ", read(path))
            self.assertNotRegex(flat, r"does not check this, the daemon fails at start-up")
            self.assertNotRegex(flat, r"not a numeric IP address, or a port in use, is only found at start-up")


if __name__ == "__main__":
    unittest.main()
