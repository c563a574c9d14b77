"""Reload under load: while several clients send messages continuously, SIGHUP arrives again
and again (each time with a changed configuration).  Every message must get the MSA's 250 and
arrive; no session may be dropped; every reload must succeed."""
import signal
import threading
import time
import unittest
import uuid

import harness as h

CLIENTS = 4
SESSIONS = 2           # per client, one after the other
MESSAGES = 5           # per session


class ReloadUnderLoad(unittest.TestCase):
    def test_sighup_storm_loses_nothing(self):
        p = h.Proxy(name="reload-load", extra={"replies": {"auth_required": "text 0"}})
        run = uuid.uuid4().hex[:8]
        results = []          # (client, session, message, code)
        errors = []
        lock = threading.Lock()
        before = len(h.msa().messages())

        def client(n):
            try:
                for s in range(SESSIONS):
                    c = h.login(p.port, ("alice", "bob")[n % 2], mech=("PLAIN", "LOGIN", "CRAM-MD5")[n % 3])
                    for m in range(MESSAGES):
                        subject = "load %s c%d s%d m%d" % (run, n, s, m)
                        c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
                        codes = [c.reply()[0] for _ in range(3)]
                        c.send(h.message(subject) + b".\r\n")
                        code, lines = c.reply()
                        with lock:
                            results.append((n, s, m, codes + [code]))
                    self_code = c.cmd("QUIT")[0]
                    with lock:
                        results.append((n, s, "quit", [self_code]))
                    c.close()
            except Exception as e:      # a dropped session shows up here
                with lock:
                    errors.append("client %d: %r" % (n, e))

        with p:
            threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
            for t in threads:
                t.start()
            reloads = 0
            while any(t.is_alive() for t in threads):
                reloads += 1
                p.config["replies"] = {"auth_required": "text %d" % reloads}
                p.write_config()
                p.proc.send_signal(signal.SIGHUP)
                time.sleep(0.05)
            for t in threads:
                t.join(60)
            self.assertEqual(errors, [])
            self.assertGreaterEqual(reloads, 5, "the load finished before the reloads began")
            deadline = time.monotonic() + 10
            while p.log_text().count("reload done") < reloads and time.monotonic() < deadline:
                time.sleep(0.05)
            log = p.log_text()
            self.assertEqual(log.count("reload done"), reloads)
            self.assertNotIn("reload failed", log)
        self.assertEqual(p.proc.returncode, 0)
        expected = CLIENTS * SESSIONS * MESSAGES
        sent = [r for r in results if r[2] != "quit"]
        self.assertEqual(len(sent), expected)
        for r in sent:
            self.assertEqual(r[3], [250, 250, 354, 250], r)
        self.assertEqual([r[3] for r in results if r[2] == "quit"], [[221]] * CLIENTS * SESSIONS)
        delivered = h.delivered_since(before, expected, timeout=30)
        subjects = {line for _, data in delivered for line in data.decode(errors="replace").splitlines()
                    if line.startswith("Subject: load " + run)}
        self.assertEqual(len(subjects), expected)


if __name__ == "__main__":
    unittest.main()
