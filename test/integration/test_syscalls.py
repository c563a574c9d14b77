"""System calls per session (issue 10): each socket is registered with epoll once, edge-triggered,
instead of its write interest being toggled around every reply, and no read asks the kernel how
much there is to read (libevent's evbuffer_read did an ioctl(FIONREAD) before each readv).

Measured with strace attached to a running proxy over whole sessions: EHLO, STARTTLS, EHLO,
AUTH PLAIN, one message, QUIT, relayed in plain text with XCLIENT to a scripted MSA.
"""
import shutil
import unittest

import harness as h

SESSIONS = 20


def session(port):
    c = h.login(port)
    code, _ = h.send_message(c, "syscalls")
    assert code == 250, code
    assert c.cmd("QUIT")[0] == 221
    c.close()


@unittest.skipUnless(shutil.which("strace"), "strace not installed (make deps)")
class SystemCallsPerSession(unittest.TestCase):
    def test_each_socket_registered_once_and_no_fionread(self):
        with h.FakeMsa() as fake:
            with h.Proxy(name="syscalls", upstream={"port": fake.port, "tls": "none"}) as p:
                session(p.port)  # first-use costs (OpenSSL, Cyrus) are not counted
                calls = h.strace_counts(p.proc.pid, lambda: [session(p.port) for _ in range(SESSIONS)])
        per_session = {name: count / SESSIONS for name, count in calls.items()}
        # Two sockets per session (customer, MSA): one EPOLL_CTL_ADD and one DEL each.  The
        # bufferevents made 44.
        self.assertLessEqual(per_session.get("epoll_ctl", 0), 4.0, per_session)
        self.assertEqual(per_session.get("ioctl", 0), 0, per_session)
        # The sessions really ran through the traced process.
        self.assertGreaterEqual(per_session.get("accept4", 0), 1.0, per_session)


if __name__ == "__main__":
    unittest.main()
