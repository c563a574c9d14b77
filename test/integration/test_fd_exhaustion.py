"""Out of file descriptors (issue 8 item 2): at EMFILE the proxy must not spin on accept() or
flood the log; the customers it cannot serve get a clear 421, and it serves again as soon as
descriptors come back.  `subproxy -t` and the start-up log warn when max_sessions cannot fit."""

import os
import resource
import socket
import subprocess
import time
import unittest

import harness as h

NOFILE = 64


def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class OutOfDescriptors(unittest.TestCase):

    def test_emfile_neither_spins_nor_floods_the_log_and_recovers(self):
        with h.Proxy(preexec_fn=low_nofile) as p:
            self.assertTrue(p.wait_log("two per session"), "no start-up warning about the file limit")
            idle = []
            for _ in range(NOFILE + 20):
                s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
                idle.append(s)
            time.sleep(0.5)
            cpu0 = cpu_seconds(p.proc.pid)
            time.sleep(3)
            burned = cpu_seconds(p.proc.pid) - cpu0
            self.assertLess(burned, 0.5, "accept() spins at EMFILE: %.2f s CPU in 3 s" % burned)
            log = p.log_text()
            self.assertLess(log.count("Too many open files"), 3, log[-2000:])
            # The customers beyond the limit were told, not left hanging in the backlog.
            told = 0
            for s in idle:
                s.settimeout(0.2)
                try:
                    told += s.recv(200).startswith(b"421 4.3.2")
                except (socket.timeout, OSError):
                    pass
            self.assertGreater(told, 0)
            for s in idle:
                s.close()
            time.sleep(0.5)
            before = len(h.msa().messages())
            c = h.login(p.port)
            self.assertEqual(h.send_message(c, "after-emfile")[0], 250)
            c.cmd("QUIT")
            self.assertEqual(len(h.delivered_since(before)), 1)

    def test_check_warns_when_max_sessions_cannot_fit(self):
        p = h.Proxy(limits={"max_sessions": 5000})
        p.write_config()
        r = subprocess.run([h.SUBPROXY, "-t", "-c", p.conf_file], capture_output=True, text=True,
                           preexec_fn=low_nofile)
        self.assertEqual(r.returncode, 0, r.stderr)   # a warning, not an error
        self.assertIn("warning: limits.max_sessions = 5000 needs about", r.stderr)
        r = subprocess.run([h.SUBPROXY, "-t", "-c", p.conf_file], capture_output=True, text=True)
        self.assertNotIn("file descriptors", r.stderr)   # 20000 here: fits


if __name__ == "__main__":
    unittest.main()
