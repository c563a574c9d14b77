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

    def test_last_reply_and_close_notify_leave_in_one_send(self):
        # QUIT under TLS: the 221 and the close_notify alert behind it go out in one send
        # (they were two, the alert alone from the session's teardown a loop turn later).
        with h.FakeMsa() as fake:
            with h.Proxy(name="closenotify", upstream={"port": fake.port, "tls": "none"}) as p:
                session(p.port)
                sends = h.strace_sends(p.proc.pid, lambda: session(p.port))
        greeted = {fd for fd, head, _ in sends if head.startswith(b"220 ")}
        self.assertEqual(len(greeted), 1, sends)  # the customer's socket (the MSA's gets none)
        customer = [(head, length) for fd, head, length in sends if fd in greeted]
        last_head, last_length = customer[-1]
        self.assertEqual(last_head[:3], b"\x17\x03\x03", customer)  # TLS records
        # A lone TLS 1.3 close_notify is 24 bytes (5 of header, 2 of alert, 1 of type, 16 of
        # tag); the 221 record (18 bytes of text) comes in front of it.
        self.assertGreater(last_length, 24 + 24, customer)


if __name__ == "__main__":
    unittest.main()
