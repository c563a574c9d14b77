"""Mail goes through: every mechanism x backend x login mode, with swaks, curl and smtplib, into
a real Postfix MSA, and arrives with the right authenticated sender."""
import os
import re
import subprocess
import tempfile
import unittest
import uuid

import harness as h

COMBOS = [
    # (backend, login, mechanism)
    ("sasl", "xclient", "PLAIN"),
    ("sasl", "xclient", "LOGIN"),
    ("sasl", "xclient", "CRAM-MD5"),
    ("sasl", "replay", "PLAIN"),
    ("sasl", "replay", "LOGIN"),
    ("upstream", "none", "PLAIN"),
    ("upstream", "none", "LOGIN"),
    ("upstream", "xclient", "CRAM-MD5"),
]
CLIENTS = ["smtplib", "swaks", "curl"]

_proxies = {}


def proxy_for(backend, login):
    key = (backend, login)
    if key not in _proxies:
        mechs = ["PLAIN", "LOGIN"] if login == "replay" else ["PLAIN", "LOGIN", "CRAM-MD5"]
        p = h.Proxy(backend=backend, login=login, mechanisms=mechs, name="relay-%s-%s" % key)
        p.start()
        _proxies[key] = p
    return _proxies[key]


def tearDownModule():
    for p in _proxies.values():
        p.stop()


def send_smtplib(port, mech, subject):
    s = h.smtp(port)
    s.user, s.password = "alice", h.USERS["alice"]
    method = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login, "CRAM-MD5": s.auth_cram_md5}[mech]
    code, _ = s.auth(mech, method, initial_response_ok=(mech != "CRAM-MD5"))
    assert code == 235, code
    s.sendmail("alice@example.com", ["bob@example.com"], h.message(subject))
    s.quit()


def send_swaks(port, mech, subject):
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), "--ehlo", "customer.example",
                        "--tls", "--auth", mech, "--auth-user", "alice", "--auth-password", h.USERS["alice"],
                        "--from", "alice@example.com", "--to", "bob@example.com",
                        "--header", "Subject: " + subject, "--body", "Hello from swaks."],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert r.returncode == 0, r.stdout


def send_curl(port, mech, subject):
    with tempfile.NamedTemporaryFile("wb", suffix=".eml", delete=False) as f:
        f.write(h.message(subject))
        path = f.name
    try:
        r = subprocess.run(["curl", "--silent", "--show-error", "--url", "smtp://127.0.0.1:%d" % port,
                            "--ssl-reqd", "--cacert", os.path.join(h.CERTS, "ca.pem"),
                            "--mail-from", "alice@example.com", "--mail-rcpt", "bob@example.com",
                            "--upload-file", path, "--user", "alice:" + h.USERS["alice"],
                            "--login-options", "AUTH=" + mech],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        assert r.returncode == 0, r.stdout
    finally:
        os.unlink(path)


SENDERS = {"smtplib": send_smtplib, "swaks": send_swaks, "curl": send_curl}


class RelayMatrix(unittest.TestCase):
    def check(self, backend, login, mech, client):
        p = proxy_for(backend, login)
        subject = "relay %s %s %s %s %s" % (backend, login, mech, client, uuid.uuid4().hex[:8])
        before = len(h.msa().messages())
        SENDERS[client](p.port, mech, subject)
        msgs = h.delivered_since(before)
        body = msgs[-1][1]
        self.assertIn(subject.encode(), body)
        # The MSA knows who sent it: XCLIENT LOGIN, replayed AUTH or relayed AUTH.
        self.assertIn(b"(Authenticated sender: alice)", body)
        self.assertTrue(re.search(r"sasl_username=alice\b", h.msa().log_text()))
        # One line names the account, the port the customer dialled and the MSA's queue id, in
        # front of the customer's own text: the proxy's log joins the MSA's by queue_id.
        sent = re.findall(r"\]:\d+: message sasl_username=(\S+) dialled_port=(\d+) status=sent queue_id=(\w+) "
                          r"from=<alice@example\.com> nrcpt=1 size=\d+ reply=\"2\.0\.0 Ok: queued as (\w+)\"\n",
                          p.log_text())
        self.assertTrue(sent, p.log_text())
        user, dialled, queue_id, in_reply = sent[-1]
        self.assertEqual((user, dialled, queue_id), ("alice", str(p.port), in_reply))
        self.assertRegex(h.msa().log_text(), r"%s: client=\S+, sasl_method=\S+, sasl_username=alice\n" % queue_id)


def _add(backend, login, mech, client):
    name = "test_%s_%s_%s_%s" % (backend, login, mech.replace("-", "_"), client)
    setattr(RelayMatrix, name, lambda self: self.check(backend, login, mech, client))


for _combo in COMBOS:
    for _client in CLIENTS:
        _add(*_combo, _client)


class Transactions(unittest.TestCase):
    def test_pipelined_transactions_and_dot_stuffing_roundtrip(self):
        p = proxy_for("sasl", "xclient")
        c = h.login(p.port)
        tag = uuid.uuid4().hex[:8]
        body = ("Subject: dots %s\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nmiddle\r\n" % tag)
        stuffed = "".join(("." + line if line.startswith(".") else line) + "\r\n"
                          for line in body.split("\r\n")[:-1])
        before = len(h.msa().messages())
        # RFC 2920: MAIL, RCPT, RCPT and DATA in one write; replies in order.
        c.send("MAIL FROM:<alice@example.com> AUTH=<>\r\nRCPT TO:<bob@example.com>\r\n"
               "RCPT TO:<alice@example.com>\r\nDATA\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 354)
        c.send(stuffed + ".\r\n")
        code, lines = c.reply()
        self.assertEqual(code, 250)
        self.assertRegex(lines[0], r"queued as [0-9A-F]+")   # the MSA's own reply
        # A second transaction on the same session.
        c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
        self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
        c.send("Subject: second %s\r\n\r\nhi\r\n.\r\n" % tag)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        msgs = h.delivered_since(before, 3)   # two recipients + one
        texts = [m[1] for m in msgs]
        first = [t for t in texts if ("dots " + tag).encode() in t]
        self.assertEqual(len(first), 2)
        # Byte-exact after the headers Postfix prepends: the dots survived both ways.
        self.assertIn(b"\n.leading dot\n..two dots\n.\nmiddle\n", first[0].replace(b"\r\n", b"\n"))

    def test_ehlo_after_auth_shows_msa_capabilities(self):
        p = proxy_for("sasl", "xclient")
        c = h.login(p.port)
        code, lines = c.cmd("EHLO customer.example")
        self.assertEqual(code, 250)
        words = [l.split()[0].upper() for l in lines[1:]]
        for hidden in ("CHUNKING", "XCLIENT", "XFORWARD", "STARTTLS", "AUTH", "ETRN", "VRFY"):
            self.assertNotIn(hidden, words)
        self.assertIn("PIPELINING", words)
        self.assertIn("SIZE", words)
        c.cmd("QUIT")


class Resumption(unittest.TestCase):
    def test_second_msa_session_resumes_tls(self):
        with h.FakeMsa() as fake:
            with h.Proxy(name="resume", upstream={"port": fake.port}) as p:
                for _ in range(3):
                    c = h.login(p.port)
                    c.cmd("QUIT")
                    c.close()
                log = p.log_text()
                ready = [l for l in log.splitlines() if "MSA session ready" in l]
                self.assertEqual(len(ready), 3)
                # The full handshake is the capability probe's at start (or the first
                # session's, if that came first); later sessions resume.
                self.assertIn("TLSv1.3 resumed", ready[1])
                self.assertIn("TLSv1.3 resumed", ready[2])


if __name__ == "__main__":
    unittest.main()
