"""Each phase keeps the timeout subproxy.conf(5) gives it, and only that one (issue 7): the
timers of the TLS handshake and of the MSA connect must not survive into the session.  Fast
versions of test_slow.py's scenarios, with the earlier phases' timeouts cut to 2 s."""

import time
import unittest

import harness as h


class PhaseTimeouts(unittest.TestCase):

    def test_customer_idle_past_the_handshake_timeout_under_tls(self):
        # The plain socket under the TLS filter kept tls_handshake_timeout: a customer quiet
        # for that long was cut although command_timeout allowed more.
        with h.Proxy(limits={"tls_handshake_timeout": 2, "command_timeout": 30}) as p:
            c = h.login(p.port)
            time.sleep(3.5)
            self.assertEqual(c.cmd("NOOP")[0], 250, p.log_text())
            c.cmd("QUIT")

    def test_msa_silent_past_the_connect_timeout(self):
        # The MSA's socket kept connect_timeout under TLS: 2 s of MSA silence (no command
        # pending) cut the relay.
        with h.Proxy(upstream={"connect_timeout": 2}) as p:
            before = len(h.msa().messages())
            c = h.login(p.port)
            time.sleep(3.5)
            self.assertEqual(h.send_message(c, "msa-silent-past-connect-timeout")[0], 250, p.log_text())
            c.cmd("QUIT")
            self.assertEqual(len(h.delivered_since(before)), 1)

    def test_command_timeout_still_applies(self):
        with h.Proxy(limits={"command_timeout": 2}) as p:
            c = h.login(p.port)
            started = time.monotonic()
            code, lines = c.reply()
            self.assertEqual(code, 421, lines)
            self.assertIn("4.4.2", lines[0])
            self.assertLess(time.monotonic() - started, 10)


if __name__ == "__main__":
    unittest.main()
