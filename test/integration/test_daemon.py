"""The command line and the signals: -t, -V, SIGHUP reload, SIGTERM drain."""
import os
import re
import signal
import subprocess
import time
import unittest
import uuid

import harness as h


def run(*args):
    return subprocess.run([h.SUBPROXY, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=30)


class CommandLine(unittest.TestCase):
    def test_version(self):
        r = run("-V")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^subproxy \d+\.\d+\.\d+")

    def test_check_good_configuration(self):
        p = h.Proxy(name="check-good")
        p.write_config()
        r = run("-t", "-c", p.conf_file)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("configuration OK", r.stdout)

    def test_check_reports_file_line_and_key(self):
        p = h.Proxy(name="check-bad")
        p.write_config()
        with open(p.conf_file, "a") as f:
            f.write("upstream2 = 1;\n")
        r = run("-t", "-c", p.conf_file)
        self.assertEqual(r.returncode, 1)
        lines = len(open(p.conf_file).read().splitlines())
        self.assertIn("%s:%d:" % (p.conf_file, lines), r.stdout)
        self.assertIn("upstream2", r.stdout)

    def test_check_loads_certificates(self):
        p = h.Proxy(name="check-cert")
        p.config["tls"]["key"] = os.path.join(h.CERTS, "msa.key")   # does not match proxy.pem
        p.write_config()
        r = run("-t", "-c", p.conf_file)
        self.assertEqual(r.returncode, 1)
        self.assertIn("tls.key", r.stdout)
        self.assertIn("mismatch", r.stdout)

    def test_duplicate_setting_is_named_with_file_and_line(self):
        p = h.Proxy(name="check-dup")
        p.write_config()
        lines = open(p.conf_file).read().splitlines()
        first = next(i for i, l in enumerate(lines, 1) if l.startswith("hostname ="))
        with open(p.conf_file, "a") as f:
            f.write('hostname = "again.test";\n')
        for args in (("-t",), ("-f",)):
            r = run(*args, "-c", p.conf_file)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stdout, "%s:%d: duplicate setting 'hostname' (already set at line %d); remove one of "
                                       "them\n" % (p.conf_file, len(lines) + 1, first))

    def test_missing_certificate_is_named_not_an_openssl_stack(self):
        p = h.Proxy(name="check-nocert")
        missing = os.path.join(p.dir, "no-such-cert.pem")
        p.config["tls"]["cert"] = missing
        p.write_config()
        tls_line = next(i for i, l in enumerate(open(p.conf_file).read().splitlines(), 1) if l.startswith("tls ="))
        expected = "%s:%d: tls.cert: cannot read %s: No such file or directory\n" % (p.conf_file, tls_line, missing)
        for args in (("-t",), ("-f",)):
            r = run(*args, "-c", p.conf_file)
            self.assertEqual((r.returncode, r.stdout), (1, expected))
        # The same at a reload: the running certificate stays, the log names the file.
        p.config["tls"]["cert"] = os.path.join(h.CERTS, "proxy.pem")
        with p:
            p.config["upstream"]["ca_file"] = os.path.join(p.dir, "no-such-ca.pem")
            p.write_config()
            p.proc.send_signal(signal.SIGHUP)
            self.assertTrue(p.wait_log("reload failed"))
            self.assertRegex(p.log_text(), r"error: reload failed, keeping the running configuration: %s:\d+: "
                                           r"upstream\.ca_file: cannot read %s: No such file or directory\n"
                                           % (re.escape(p.conf_file), re.escape(p.config["upstream"]["ca_file"])))
            self.assertNotIn("system library", p.log_text())

    def test_check_sasl_setup(self):
        d = os.path.join(h.workdir(), "sasl-no-cram")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "subproxy.conf"), "w") as f:
            f.write("pwcheck_method: saslauthd\nmech_list: PLAIN LOGIN\n")
        p = h.Proxy(name="check-sasl", sasl_dir=d)    # asks for CRAM-MD5 too
        p.write_config()
        r = run("-t", "-c", p.conf_file)
        self.assertEqual(r.returncode, 1)
        self.assertIn("CRAM-MD5", r.stdout)

    def test_start_fails_clearly_on_missing_file(self):
        r = run("-f", "-c", "/nonexistent/subproxy.conf")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/subproxy.conf", r.stdout)


class Signals(unittest.TestCase):
    def test_sighup_reload_new_sessions_get_new_config_old_keep_theirs(self):
        p = h.Proxy(name="reload", extra={"replies": {"auth_required": "old text"}})
        with p:
            old = h.RawClient(p.port)
            old.reply()
            old.cmd("EHLO a.example")
            old.starttls()
            old.cmd("EHLO a.example")
            p.config["replies"] = {"auth_required": "new text"}
            p.write_config()
            p.proc.send_signal(signal.SIGHUP)
            self.assertTrue(p.wait_log("reload done"))
            self.assertIn("old text", old.cmd("MAIL FROM:<a@example.com>")[1][0])
            new = h.RawClient(p.port)
            new.reply()
            new.cmd("EHLO b.example")
            new.starttls()
            new.cmd("EHLO b.example")
            self.assertIn("new text", new.cmd("MAIL FROM:<a@example.com>")[1][0])
            # A broken config is refused and the running one stays.
            with open(p.conf_file, "a") as f:
                f.write("nonsense = ;\n")
            p.proc.send_signal(signal.SIGHUP)
            self.assertTrue(p.wait_log("reload failed, keeping the running configuration"))
            third = h.RawClient(p.port)
            self.assertEqual(third.reply()[0], 220)
            for c in (old, new, third):
                c.close()

    def test_sighup_refuses_mechanisms_the_backend_cannot_serve(self):
        # Cyrus (mech_list read once, at start) serves PLAIN and LOGIN only.
        d = h.make_sasldb(os.path.join(h.workdir(), "sasl-reload-mechs"), mechs="PLAIN LOGIN")
        p = h.Proxy(name="reload-mechs", mechanisms=["PLAIN", "LOGIN"], sasl_dir=d)
        with p:
            p.config["auth"]["mechanisms"] = ["PLAIN", "LOGIN", "CRAM-MD5"]
            p.write_config()
            p.proc.send_signal(signal.SIGHUP)
            self.assertTrue(p.wait_log("reload failed, keeping the running configuration: auth.mechanisms"))
            c = h.RawClient(p.port)  # new sessions still get the old, servable offer
            c.reply()
            c.cmd("EHLO again.example")
            c.starttls()
            code, lines = c.cmd("EHLO again.example")
            self.assertIn("AUTH PLAIN LOGIN", lines)
            c.close()

    def test_sigterm_lets_a_transaction_finish(self):
        p = h.Proxy(name="drain", limits={"shutdown_grace": 10})
        with p:
            c = h.login(p.port)
            before = len(h.msa().messages())
            c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
            self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
            p.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            # No new sessions once stopping...
            with self.assertRaises(Exception):
                late = h.RawClient(p.port, timeout=3)
                code, _ = late.reply()
                self.assertNotEqual(code, 220)
                raise AssertionError("refused")
            # ...but the message in flight is delivered and answered by the MSA.
            subject = "drain " + uuid.uuid4().hex[:8]
            c.send(h.message(subject) + b".\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 250)
            self.assertRegex(lines[0], "queued as")
            self.assertEqual(c.cmd("QUIT")[0], 221)
            self.assertEqual(p.proc.wait(15), 0)
            self.assertIn(subject.encode(), h.delivered_since(before)[-1][1])

    def test_sigterm_grace_over_while_the_msa_decides_gets_its_answer_first(self):
        # The body and its "." are with the MSA when the grace time runs out: the customer
        # still gets the MSA's own reply (nothing lost, nothing duplicated), then 421.
        with h.FakeMsa(fault="slow_after_dot") as fake:
            p = h.Proxy(name="grace-verdict", upstream={"port": fake.port}, limits={"shutdown_grace": 1})
            with p:
                c = h.login(p.port)
                c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
                c.send("Subject: verdict\r\n\r\nhi\r\n.\r\n")
                time.sleep(0.2)
                p.proc.send_signal(signal.SIGTERM)
                code, lines = c.reply()
                self.assertEqual(code, 250)
                self.assertIn("queued as FAKE", lines[0])
                code, lines = c.reply()
                self.assertEqual((code, lines[0][:5]), (421, "4.3.2"))
                self.assertEqual(p.proc.wait(10), 0)

    def test_sigterm_after_grace_sends_421(self):
        p = h.Proxy(name="grace", limits={"shutdown_grace": 1})
        with p:
            c = h.RawClient(p.port)
            c.reply()
            c.cmd("EHLO idle.example")
            p.proc.send_signal(signal.SIGTERM)
            code, lines = c.reply()
            self.assertEqual(code, 421)
            self.assertTrue(lines[0].startswith("4.3.2"))
            self.assertEqual(p.proc.wait(10), 0)


if __name__ == "__main__":
    unittest.main()
