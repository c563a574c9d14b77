"""Real clients and the RFCs (issue 7, item 3): what mail programs in the wild send and expect,
against the real Postfix MSA (and a FakeMsa where Postfix cannot be made to answer that way)."""
import base64
import unittest

import harness as h


def raw_line(c):
    """The next line from RawClient `c` exactly as sent, CRLF included."""
    while b"\r\n" not in c.buf:
        chunk = c.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed; buffered %r" % c.buf)
        c.buf += chunk
    line, c.buf = c.buf.split(b"\r\n", 1)
    return line + b"\r\n"


def tls_ehlo(port):
    """A RawClient after greeting, EHLO, STARTTLS and EHLO again."""
    c = h.RawClient(port)
    assert c.reply()[0] == 220
    c.cmd("EHLO customer.example")
    c.starttls()
    c.cmd("EHLO customer.example")
    return c


def plain(user="alice"):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + h.USERS[user].encode()).decode()


class EmptyChallenge(unittest.TestCase):
    """RFC 4954 §4: an empty server challenge is "334" SP.  AUTH PLAIN without an initial
    response gets one, from our SASL and relayed from the MSA (backend "upstream")."""

    def check(self, proxy):
        c = tls_ehlo(proxy.port)
        c.send("AUTH PLAIN\r\n")
        self.assertEqual(raw_line(c), b"334 \r\n")
        code, lines = c.cmd(plain())
        self.assertEqual(code, 235, lines)
        c.cmd("QUIT")
        c.close()

    def test_backend_sasl(self):
        with h.Proxy(name="334-sasl") as p:
            self.check(p)

    def test_backend_upstream(self):
        with h.Proxy(name="334-upstream", backend="upstream", login="none") as p:
            self.check(p)


if __name__ == "__main__":
    unittest.main()
