"""Customers as they are, not as loopback at full speed: a slow upload, a mail program that sits
idle for a minute, and an MSA (a content filter) that takes two minutes over the final dot.

Each scenario runs against a real Postfix MSA and must deliver its message exactly once (counted
by a unique Subject): a lost message or a 4xx that makes the mail program send it again is a
failure.  The scenarios take 45-125 s each, so they run at the same time (threads started in
setUpClass) and test/run-all.sh runs this file next to the rest of the suite.
"""

import concurrent.futures
import os
import socket
import time
import unittest

import harness as h
from msa import PostfixMsa, free_port

UPLOAD_BYTES = 20 * 1024 * 1024
UPLOAD_SECONDS = 48          # ~3.5 Mbit/s: an ADSL uplink
IDLE_SECONDS = 65            # past the old 30 s MSA timer and the 60 s TLS handshake timer
MSA_DOT_DELAY = 120          # the content filter's verdict on the final dot
SLOW_SENDER = "slow-filter@example.com"


class SlowPolicy(h.ThreadedServer):
    """A Postfix policy service (smtpd_end_of_data_restrictions) that answers DUNNO at once,
    except after the final dot of mail from SLOW_SENDER, which it holds for MSA_DOT_DELAY:
    a real Postfix that takes its time over "." the way a slow content filter makes it."""

    def __init__(self):
        self.port = free_port()
        super().__init__(socket.create_server(("127.0.0.1", self.port)))

    def handle(self, conn):
        f = conn.makefile("rb")
        attrs = {}
        try:
            for line in f:
                line = line.strip()
                if line:
                    key, _, value = line.decode().partition("=")
                    attrs[key] = value
                    continue
                if attrs.get("protocol_state") == "END-OF-MESSAGE" and attrs.get("sender") == SLOW_SENDER:
                    time.sleep(MSA_DOT_DELAY)
                conn.sendall(b"action=DUNNO\n\n")
                attrs = {}
        except OSError:
            return


def body_lines(total):
    """Message body of about `total` bytes in lines shaped like a base64 attachment's."""
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
    return line * (total // len(line))


def transaction(c, subject, sender="alice@example.com", pause_before_data=0):
    assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
    assert c.cmd("RCPT TO:<bob@example.com>")[0] == 250
    time.sleep(pause_before_data)
    code, lines = c.cmd("DATA")
    assert code == 354, (code, lines)
    c.send(b"Subject: %s\r\n\r\n" % subject.encode())


def finish(c):
    """Sends the final dot; returns the MSA's end-of-data reply as (code, text)."""
    c.send(b".\r\n")
    code, lines = c.reply()
    c.cmd("QUIT")
    c.close()
    return code, " ".join(lines)


def slow_upload(port):
    c = h.login(port, timeout=60)
    transaction(c, "slow-upload")
    body = body_lines(UPLOAD_BYTES)
    chunk = 64 * 1024
    pause = UPLOAD_SECONDS / (len(body) / chunk)
    started = time.monotonic()
    for i in range(0, len(body), chunk):
        c.send(body[i:i + chunk])
        time.sleep(pause)
    code, text = finish(c)
    return code, text, time.monotonic() - started


def idle_after_auth(port):
    c = h.login(port, timeout=60)
    time.sleep(IDLE_SECONDS)
    transaction(c, "idle-after-auth")
    c.send(b"Sat idle for a minute after AUTH.\r\n")
    return finish(c)


def idle_before_data(port):
    c = h.login(port, timeout=60)
    transaction(c, "idle-before-data", pause_before_data=IDLE_SECONDS)
    c.send(b"Sat idle for a minute between RCPT and DATA.\r\n")
    return finish(c)


def slow_msa_verdict(port):
    c = h.login(port, timeout=MSA_DOT_DELAY + 60)
    transaction(c, "slow-msa-verdict", sender=SLOW_SENDER)
    c.send(b"The MSA takes two minutes over this one.\r\n")
    started = time.monotonic()
    code, text = finish(c)
    return code, text, time.monotonic() - started


class SlowCustomersAndMsa(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.policy = SlowPolicy().__enter__()
        cls.msa = PostfixMsa(os.path.join(h.workdir(), "slow-msa"), free_port(), h.CERTS).start()
        cls.msa.postconf(smtpd_end_of_data_restrictions="check_policy_service inet:127.0.0.1:%d" % cls.policy.port,
                         smtpd_policy_service_timeout="300s")
        # Short connect timeout on purpose: the MSA connection must not keep it once the relay
        # is up (issue 7: any 30 s of MSA silence used to kill the session).
        cls.proxy = h.Proxy(name="slow", upstream={"port": cls.msa.port, "connect_timeout": 5}).start()
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
        port = cls.proxy.port
        cls.results = {name: pool.submit(fn, port) for name, fn in
                       (("upload", slow_upload), ("idle", idle_after_auth), ("rcpt_data", idle_before_data),
                        ("msa_dot", slow_msa_verdict))}
        pool.shutdown(wait=True)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        cls.msa.stop()
        cls.policy.__exit__(None, None, None)

    def result(self, name):
        try:
            return self.results[name].result()
        except Exception as e:   # the scenario's own assertion or a dropped connection
            self.fail("%s: %r\nproxy log tail:\n%s" % (name, e, "\n".join(self.proxy.log_text().splitlines()[-15:])))

    def delivered_once(self, subject):
        """Path of the one delivered copy (Maildir files have LF line ends)."""
        needle = b"\nSubject: " + subject.encode() + b"\n"

        def copies():
            return [p for p, data in self.msa.messages() if needle in data]

        deadline = time.monotonic() + 30
        while not copies() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # a duplicate would be queued right behind the first
        found = copies()
        self.assertEqual(len(found), 1, "%s delivered %d times" % (subject, len(found)))
        return found[0]

    def test_slow_upload_of_20_MB(self):
        code, text, seconds = self.result("upload")
        self.assertEqual(code, 250, text)
        self.assertGreaterEqual(seconds, 45)
        path = self.delivered_once("slow-upload")
        sent = body_lines(UPLOAD_BYTES)
        with open(path, "rb") as f:
            stored = f.read()
        # Every body line arrived (the Maildir copy has LF line ends).
        line = sent[:sent.index(b"\r\n") + 2]
        self.assertEqual(stored.count(line.replace(b"\r\n", b"\n")), sent.count(b"\r\n"))

    def test_idle_a_minute_after_auth(self):
        code, text = self.result("idle")
        self.assertEqual(code, 250, text)
        self.delivered_once("idle-after-auth")

    def test_idle_a_minute_between_rcpt_and_data(self):
        code, text = self.result("rcpt_data")
        self.assertEqual(code, 250, text)
        self.delivered_once("idle-before-data")

    def test_msa_takes_two_minutes_over_the_final_dot(self):
        code, text, seconds = self.result("msa_dot")
        self.assertEqual(code, 250, text)
        self.assertGreaterEqual(seconds, MSA_DOT_DELAY - 1)
        self.delivered_once("slow-msa-verdict")


if __name__ == "__main__":
    unittest.main()
