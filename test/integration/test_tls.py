"""TLS towards customers (issue 7 item 4): testssl.sh finds nothing LOW or worse with the default
configuration on both listener kinds; tls.min_protocol lets TLS 1.0/1.1 clients in only when
asked; a failed handshake is logged with what the client offered; the migration report shows
the TLS version each user came with."""
import json
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request

import harness as h

TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


def both_listeners(name, tls=None, extra=None):
    """A Proxy with a STARTTLS listener (.port) and an implicit-TLS one (.implicit_port)."""
    p = h.Proxy(name=name, extra=extra)
    p.implicit_port = h.free_port()
    p.config["listen"] = [{"address": "127.0.0.1", "port": p.port},
                          {"address": "127.0.0.1", "port": p.implicit_port, "tls": "implicit"}]
    if tls:
        p.config["tls"].update(tls)
    return p


def s_client(port, version, starttls=True):
    """`openssl s_client -<version>` against the proxy: (handshake completed, output).  Debian's
    openssl refuses TLS 1.0/1.1 at its default security level; SECLEVEL=0 on our side of the
    test lets the proxy alone decide."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-" + version,
           "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", os.path.join(h.CERTS, "ca.pem"),
           "-servername", "proxy.test"]
    if starttls:
        cmd += ["-starttls", "smtp"]
    r = subprocess.run(cmd, input="QUIT\n", capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    # s_client prints "Cipher is (NONE)" / "Cipher    : 0000" when no session was set up.
    done = re.search(r"^New, (TLSv[\d.]+|SSLv3), Cipher is (?!\(NONE\))", out, re.M) is not None
    return done, out


def tls10_context():
    """A Python client that speaks TLS 1.0 only (an old mail program)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(h.CERTS, "ca.pem"))
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1
    return ctx


def send_over(port, user, context, subject):
    """EHLO, STARTTLS with `context`, AUTH and one message; returns the negotiated version."""
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="customer.example", timeout=20)
    s._host = "proxy.test"
    s.ehlo()
    s.starttls(context=context)
    version = s.sock.version()
    s.ehlo()
    s.login(user, h.USERS[user])
    s.sendmail(user + "@example.com", ["bob@example.com"], h.message(subject, sender=user + "@example.com"))
    s.quit()
    return version


@unittest.skipUnless(TESTSSL, "testssl.sh is not installed (test/deps.sh installs it)")
class Testssl(unittest.TestCase):
    """testssl.sh against the default configuration, both listener kinds at once (~20 s on a
    quiet machine, ~45 s on a busy one).  Only the checks that judge subproxy's TLS setup
    run: protocols (-p), standard cipher lists (-s, which also sorts out the suites without
    forward secrecy), server preference (-P: testssl rates a missing cipher order HIGH) and
    the vulnerabilities (-U).  A full default run adds only findings about the test CA's
    self-signed certificate (-S: untrusted chain, 10-year validity, no CRL or OCSP URI),
    which an operator replaces with their own."""

    def run_testssl(self, port, starttls, out):
        cmd = [TESTSSL, "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
               "--connect-timeout", "5", "--openssl-timeout", "5",
               "-p", "-s", "-P", "-U", "--jsonfile", out]
        if starttls:
            cmd += ["--starttls", "smtp"]
        return subprocess.Popen(cmd + ["127.0.0.1:%d" % port], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def test_no_findings_low_or_worse_with_defaults(self):
        work = tempfile.mkdtemp(prefix="testssl.", dir=h.workdir())
        with both_listeners("testssl") as p:
            started = time.monotonic()
            runs = {kind: (os.path.join(work, kind + ".json"),
                           self.run_testssl(port, kind == "starttls", os.path.join(work, kind + ".json")))
                    for kind, port in (("starttls", p.port), ("implicit", p.implicit_port))}
            outputs = {kind: proc.communicate(timeout=240)[0] for kind, (_, proc) in runs.items()}
            took = time.monotonic() - started
        print("testssl: both listeners in %.1fs" % took)
        for kind, (path, _) in runs.items():
            self.assertTrue(os.path.exists(path), "testssl wrote no JSON for %s:\n%s" % (kind, outputs[kind]))
            with open(path) as f:
                findings = json.load(f)
            ids = {f["id"] for f in findings}
            # It really tested: protocols, cipher lists and a vulnerability check are there.
            for expected in ("TLS1_2", "cipherlist_AVERAGE", "cipher_order", "LUCKY13", "BEAST"):
                self.assertIn(expected, ids, kind)
            bad = ["%s %s: %s" % (f["severity"], f["id"], f["finding"]) for f in findings
                   if f["severity"] in SEVERITIES]
            self.assertEqual(bad, [], kind)
            by_id = {f["id"]: f["finding"] for f in findings}
            self.assertEqual(by_id["TLS1"], "not offered", kind)
            self.assertEqual(by_id["TLS1_1"], "not offered", kind)
            self.assertEqual(by_id["cipherlist_AVERAGE"], "not offered", kind)  # no CBC


class MinProtocol(unittest.TestCase):
    def test_tls10_refused_by_default_and_logged_with_what_it_offered(self):
        with both_listeners("tls10-default") as p:
            for port, starttls in ((p.port, True), (p.implicit_port, False)):
                done, out = s_client(port, "tls1", starttls)
                self.assertFalse(done, out)
                done, out = s_client(port, "tls1_1", starttls)
                self.assertFalse(done, out)
            # A modern client still gets in.
            done, out = s_client(p.port, "tls1_2")
            self.assertTrue(done, out)
            self.assertTrue(p.wait_log("TLS handshake failed: unsupported protocol (client offered TLSv1.0, ciphers: "))
            self.assertTrue(p.wait_log("(client offered TLSv1.1, ciphers: "))
            log = p.log_text()
        lines = [l for l in log.splitlines() if "TLS handshake failed" in l and "(client offered" in l]
        self.assertEqual(len(lines), 4, log)
        for line in lines:
            # OpenSSL's reason alone: no "error:0A000102:SSL routines::" codes.
            self.assertNotRegex(line, r"error:[0-9A-F]{8}|SSL routines")
            self.assertIn("AES128-SHA", line)        # the ciphers by name
            self.assertLess(len(line), 500)
        # The disconnect line keeps the short reason.
        self.assertRegex(log, r"\[127\.0\.0\.1\]:\d+: disconnect duration=.* reason=TLS handshake failed: "
                              r"unsupported protocol\n")

    def test_tls10_and_11_served_with_min_protocol_tlsv1(self):
        with both_listeners("tls10-allowed", tls={"min_protocol": "TLSv1"}) as p:
            for port, starttls in ((p.port, True), (p.implicit_port, False)):
                for version, name in (("tls1", "TLSv1"), ("tls1_1", "TLSv1.1")):
                    done, out = s_client(port, version, starttls)
                    self.assertTrue(done, out)
                    self.assertRegex(out, r"Protocol\s*: %s\n" % re.escape(name))
            # And a whole submission from a TLS 1.0-only client.
            before = len(h.msa().messages())
            self.assertEqual(send_over(p.port, "alice", tls10_context(), "over TLS 1.0"), "TLSv1")
            self.assertIn(b"Subject: over TLS 1.0", h.delivered_since(before)[0][1])
            self.assertNotIn("TLS handshake failed", p.log_text())

    def test_min_protocol_tlsv13_refuses_tls12(self):
        with both_listeners("tls13-only", tls={"min_protocol": "TLSv1.3"}) as p:
            done, out = s_client(p.port, "tls1_2")
            self.assertFalse(done, out)
            done, out = s_client(p.port, "tls1_3")
            self.assertTrue(done, out)
            self.assertTrue(p.wait_log("TLS handshake failed: unsupported protocol (client offered TLSv1.2"))

    def test_no_shared_cipher_is_logged_plainly(self):
        with both_listeners("no-shared-cipher") as p:
            r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % p.port, "-starttls", "smtp",
                                "-tls1_2", "-cipher", "AES128-SHA:AES256-SHA"],
                               input="QUIT\n", capture_output=True, text=True, timeout=30)
            self.assertNotIn("Cipher is AES", r.stdout)
            self.assertTrue(p.wait_log("TLS handshake failed: no shared cipher (client offered TLSv1.2, "
                                       "ciphers: AES128-SHA, AES256-SHA"), p.log_text())

    def test_not_a_tls_client_says_so(self):
        with both_listeners("not-tls") as p:
            c = h.RawClient(p.implicit_port)
            c.send("EHLO plain.example\r\n")
            self.assertTrue(c.closed())
            self.assertTrue(p.wait_log("(no TLS ClientHello received)"), p.log_text())
            self.assertNotRegex(p.log_text(), r"error:[0-9A-F]{8}")


class MigrationTlsVersion(unittest.TestCase):
    def test_report_shows_the_tls_version_and_old_state_files_load(self):
        status = h.free_port()
        p = both_listeners("migration-tls", tls={"min_protocol": "TLSv1"}, extra={
            "status": {"port": status, "token": "tls-test-token-0123456789"},
            "migration": {"state_file": "migration.state", "flush_interval": 1}})
        state = os.path.join(p.dir, "migration.state")
        # A state file from before the TLS column: it must load, counts and all.
        with open(state, "w") as f:
            f.write("subproxy-migration 1\ntotal 4\nU carol 4 1000 2000 192.0.2.7\nA 192.0.2.7 4 1000 2000 carol\n")
        with p:
            before = len(h.msa().messages())
            self.assertEqual(send_over(p.port, "alice", tls10_context(), "old program"), "TLSv1")
            self.assertEqual(send_over(p.port, "bob", h.client_tls_context(), "new program"), "TLSv1.3")
            h.delivered_since(before, 2)
            req = urllib.request.Request("http://127.0.0.1:%d/migration" % status,
                                         headers={"Authorization": "Bearer tls-test-token-0123456789"})
            with urllib.request.urlopen(req, timeout=5) as r:
                doc = json.loads(r.read().decode())
        users = {u["user"]: u for u in doc["records"]}
        self.assertEqual(users["alice"]["tls"], "TLSv1.0")
        self.assertEqual(users["bob"]["tls"], "TLSv1.3")
        self.assertEqual(users["carol"]["tls"], "")
        self.assertEqual(users["carol"]["count"], 4)
        self.assertEqual(doc["total"], 6)
        r = subprocess.run([h.SUBPROXY, "-r", "-c", p.conf_file], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"(?m)^USER +ADDRESS +PORT +COUNT +FIRST SEEN \(UTC\) +LAST SEEN \(UTC\) +MECH +TLS$")
        # smtplib's login() prefers CRAM-MD5 when offered.
        self.assertRegex(r.stdout, r"(?m)^alice +127\.0\.0\.1 +%d +1 .* CRAM-MD5 +TLSv1\.0$" % p.port)
        self.assertRegex(r.stdout, r"(?m)^bob +127\.0\.0\.1 +%d +1 .* CRAM-MD5 +TLSv1\.3$" % p.port)
        self.assertRegex(r.stdout, r"(?m)^carol +192\.0\.2\.7 +- +4 .* - +-$")   # from the version 1 file
        with open(state) as f:
            self.assertIn("R alice 127.0.0.1 %d 1 " % p.port, f.read())


if __name__ == "__main__":
    unittest.main()
