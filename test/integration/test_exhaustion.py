"""Connection exhaustion (issue 8 item 1): idle floods and slow drips from the customer network
must not lock honest customers out.  Sessions get a total time to authenticate; when sessions run
short, new unauthenticated ones get shorter timeouts, and at limits.max_sessions the oldest
unauthenticated session is closed to make room.  An authenticated customer keeps its slot."""

import socket
import time
import unittest

import harness as h

FLOOD = 1000          # the default limits.max_sessions
FLOOD_ADDRESSES = 40  # 127.0.1.1 .. 127.0.1.40: 25 each, under guard.max_sessions_per_client


def raw_from(port, source, timeout=15):
    c = h.RawClient.__new__(h.RawClient)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    c.buf = b""
    return c


def send_one(port, subject):
    c = h.login(port)
    code, _ = h.send_message(c, subject)
    c.cmd("QUIT")
    c.close()
    return code


class ConnectionExhaustion(unittest.TestCase):
    # The guard's defaults, but no AUTH delays (not what this tests).
    GUARD = {"auth_delay": 0, "ban_threshold": 0}

    def test_idle_flood_and_slow_drip_leave_room_for_honest_customers(self):
        # Stress timeouts as long as the normal ones: here shedding alone must make the room
        # (test_sessions_begun_under_stress_get_shorter_timeouts covers the stress timeouts).
        limits = {"stress_command_timeout": 300, "stress_pre_auth_timeout": 300}
        with h.Proxy(extra={"guard": self.GUARD}, limits=limits) as p:
            # A customer who logged in before the flood, idle meanwhile: keeps its slot.
            early = h.login(p.port)
            drips = [raw_from(p.port, "127.0.2.%d" % (i + 1)) for i in range(5)]
            flood = []
            refused = 0
            for i in range(FLOOD):
                flood.append(raw_from(p.port, "127.0.1.%d" % (i % FLOOD_ADDRESSES + 1)))
                if i % 100 == 0:
                    for d in drips:        # one byte every few seconds keeps idle timers happy
                        d.send(b"E")
            for c in flood:                # greeted (or shed): all sessions exist
                try:
                    refused += c.reply()[0] != 220
                except (OSError, EOFError):
                    refused += 1
            before = len(h.msa().messages())
            codes = []
            for n in range(5):
                for d in drips:
                    try:
                        d.send(b"H")
                    except OSError:
                        pass
                codes.append(send_one(p.port, "exhaustion-honest-%d" % n))
            self.assertEqual(codes, [250] * 5, p.log_text()[-3000:])
            delivered = h.delivered_since(before, 5)
            self.assertEqual(len(delivered), 5)
            self.assertEqual(early.cmd("NOOP")[0], 250, "the authenticated customer lost its slot")
            early.cmd("QUIT")
            log = p.log_text()
            self.assertIn("closed to make room", log)
            self.assertIn("under stress", log)
            for c in flood + drips + [early]:
                c.close()

    def test_customer_whose_password_was_right_is_not_shed(self):
        # The password is good and the MSA session is being opened (slowly): that customer is
        # not "unauthenticated and idle" any more, and must not make room for a newcomer.
        with h.FakeMsa(greet_delay=3) as fake:
            with h.Proxy(upstream={"port": fake.port}, limits={"max_sessions": 3}) as p:
                c = h.RawClient(p.port)
                c.reply()
                c.cmd("EHLO customer.example")
                c.starttls()
                c.cmd("EHLO customer.example")
                c.send(h.auth_plain_line("alice", h.USERS["alice"]))
                time.sleep(1)                      # password checked; the MSA not yet ready
                others = [h.RawClient(p.port) for _ in range(3)]
                self.assertEqual(c.reply()[0], 235, p.log_text()[-1500:])
                for o in others:
                    o.close()
                c.close()

    def test_slow_drip_is_cut_at_the_pre_auth_deadline(self):
        with h.Proxy(limits={"pre_auth_timeout": 4}) as p:
            c = raw_from(p.port, "127.0.2.9")
            self.assertEqual(c.reply()[0], 220)
            started = time.monotonic()
            reply = None
            while time.monotonic() - started < 15:
                try:
                    c.send(b"N")       # "NOOP" one byte at a time, never finished
                    c.sock.settimeout(1)
                    reply = c.reply()
                    break
                except socket.timeout:
                    continue
                except (OSError, EOFError):
                    break
            elapsed = time.monotonic() - started
            self.assertIsNotNone(reply, "the drip was never answered")
            self.assertEqual(reply[0], 421, reply)
            self.assertIn("log in within 4 seconds", reply[1][0])
            self.assertLess(elapsed, 8)
            self.assertTrue(c.closed())
            self.assertIn("no successful AUTH within 4s", p.log_text())

    def test_sessions_begun_under_stress_get_shorter_timeouts(self):
        limits = {"max_sessions": 10, "stress_threshold": 50, "stress_command_timeout": 2}
        with h.Proxy(limits=limits) as p:
            calm = []
            for i in range(4):                      # 4 of 10: no stress
                c = h.RawClient(p.port)
                self.assertEqual(c.reply()[0], 220)
                calm.append(c)
            stressed = h.RawClient(p.port)          # the 5th: 50 %
            self.assertEqual(stressed.reply()[0], 220)
            stressed.sock.settimeout(6)
            code, lines = stressed.reply()          # idle: cut after stress_command_timeout
            self.assertEqual(code, 421, lines)
            # The calm ones keep greeting_timeout (300 s) and still work.
            self.assertEqual(calm[0].cmd("EHLO customer.example")[0], 250)
            # An authenticated customer is not limited by the stress timeouts.
            c = h.login(p.port)
            time.sleep(3)
            self.assertEqual(c.cmd("NOOP")[0], 250)
            for x in calm + [c]:
                x.close()


if __name__ == "__main__":
    unittest.main()
