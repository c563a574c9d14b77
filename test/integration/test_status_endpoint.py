"""The status endpoint as a local user could abuse it (issue 8 items 2 and 9): the migration
report (customers' logins and addresses) is not open to everybody, and holding connections
open cannot eat the daemon's file descriptors."""

import base64
import os
import socket
import stat
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import harness as h

TOKEN = "0123456789abcdef-status"


def get(port, path, authorization=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if authorization:
        req.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class StatusEndpoint(unittest.TestCase):

    def test_migration_report_needs_the_token_over_tcp(self):
        port = h.free_port()
        with h.Proxy(name="status-open", extra={"status": {"port": port}}):
            self.assertTrue(h.wait_port(port))
            code, text = get(port, "/migration")
            self.assertEqual(code, 403)
            self.assertIn("status.token", text)
            self.assertEqual(get(port, "/metrics")[0], 200)       # no personal data: open
        port = h.free_port()
        with h.Proxy(name="status-token", extra={"status": {"port": port, "token": TOKEN}}):
            self.assertTrue(h.wait_port(port))
            self.assertEqual(get(port, "/migration.txt")[0], 401)
            self.assertEqual(get(port, "/migration", "Bearer wrong-token-0123456789")[0], 401)
            self.assertEqual(get(port, "/migration", "Bearer " + TOKEN)[0], 200)
            basic = "Basic " + base64.b64encode(b"ops:" + TOKEN.encode()).decode()
            self.assertEqual(get(port, "/migration.txt", basic)[0], 200)

    def test_connections_are_capped(self):
        port = h.free_port()
        with h.Proxy(name="status-cap", extra={"status": {"port": port, "max_connections": 5}}) as p:
            self.assertTrue(h.wait_port(port))
            time.sleep(0.3)    # the readiness probe's connection is gone
            held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(5)]
            time.sleep(0.3)
            extra = socket.create_connection(("127.0.0.1", port), timeout=5)
            self.assertTrue(extra.recv(100).startswith(b"HTTP/1.0 503"))
            extra.close()
            for s in held:
                s.close()
            time.sleep(0.3)
            self.assertEqual(get(port, "/metrics")[0], 200)
            # The customers never noticed.
            c = h.login(p.port)
            self.assertEqual(c.cmd("NOOP")[0], 250)
            c.close()

    def test_a_drip_does_not_hold_a_connection_past_its_deadline(self):
        # One byte every 2 s resets an idle timer for ever; the 10 s per connection must hold.
        port = h.free_port()
        with h.Proxy(name="status-drip", extra={"status": {"port": port}}):
            self.assertTrue(h.wait_port(port))
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            started = time.monotonic()
            closed = False
            while time.monotonic() - started < 25 and not closed:
                try:
                    s.send(b"G")
                    s.settimeout(2)
                    closed = s.recv(100) == b""
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
            self.assertTrue(closed, "a dripping status connection was kept for 25 s")
            self.assertLess(time.monotonic() - started, 16)
            s.close()

    def test_unix_socket_serves_everything_with_file_permissions(self):
        d = h.workdir()
        path = os.path.join(d, "status-%d.sock" % os.getpid())
        with h.Proxy(name="status-unix", extra={"status": {"socket": path}}) as p:
            self.assertTrue(p.wait_log("status endpoint on unix:" + path))
            mode = stat.S_IMODE(os.stat(path).st_mode)
            self.assertEqual(mode, 0o660)
            r = subprocess.run(["curl", "-sf", "--unix-socket", path, "http://status/migration"],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('"records"', r.stdout)
        self.assertFalse(os.path.exists(path), "the socket is removed at exit")


if __name__ == "__main__":
    unittest.main()
