"""A Redis host that crashes and reboots without a word (issue 11: several gateways).

Redis runs on a host of its own: a network namespace made here, reached over a veth pair, as a
gateway reaches its Redis across a network.  The host's link goes down, Redis is killed and the
host is made anew (same address, nothing of the old connections left), as after a power cut.
Both gateways' connections to it are then half-open: they look established, but the host would
answer anything sent on them with a reset.  The main connection finds out at its next command;
the subscriber never writes, so without TCP keepalive it would wait for ever for messages that
no longer come, and a ban made on the other gateway would never arrive here.

Needs root and `ip netns`; skips otherwise."""
import os
import shutil
import signal
import subprocess
import time
import unittest

import harness as h
from test_guard import refused_reply
from test_intercept import pick_subnet, run
from test_shared_state import FAST, fail_auth, wait_for

KEEPALIVE = 10   # RedisClient::kKeepAliveSeconds
PASSWORD = "reboot-secret-0123456789"


class RedisHost:
    """redis-server alone in a network namespace at 10.232.X.2, port 6379, password only."""

    def __init__(self):
        pid = os.getpid()
        x = pick_subnet(v4="10.232.%d.", v6=None)
        self.gateway_side, self.address = "10.232.%d.1" % x, "10.232.%d.2" % x
        self.ns = "spx-redis-%d" % pid
        self.host_if, self.peer_if = "spr%dh" % pid, "spr%dn" % pid
        self.dir = h.workdir()
        self.proc = None
        self.made = False

    def boot(self):
        r = run(["ip", "netns", "add", self.ns], check=False)
        if r.returncode != 0:
            raise unittest.SkipTest("ip netns add failed: " + r.stdout.strip())
        self.made = True
        r = run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if], check=False)
        if r.returncode != 0:
            raise unittest.SkipTest("cannot create a veth pair: " + r.stdout.strip())
        for argv in (["ip", "link", "set", self.peer_if, "netns", self.ns],
                     ["ip", "addr", "add", self.gateway_side + "/30", "dev", self.host_if],
                     ["ip", "link", "set", self.host_if, "up"],
                     ["ip", "-n", self.ns, "link", "set", "lo", "up"],
                     ["ip", "-n", self.ns, "addr", "add", self.address + "/30", "dev", self.peer_if],
                     ["ip", "-n", self.ns, "link", "set", self.peer_if, "up"]):
            run(argv)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "redis-server", "--bind", self.address, "--port", "6379",
             "--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--protected-mode", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.cli("PING").strip() == "PONG":
                return self
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start in " + self.ns)

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-h", self.address, "-p", "6379", "--no-auth-warning", "-a", PASSWORD]
                           + list(args), capture_output=True, text=True, timeout=20)
        return r.stdout

    def crash(self):
        """The link first, so that not even the dying kernel's FIN or reset gets out; then
        Redis and the whole host are gone."""
        run(["ip", "link", "set", self.host_if, "down"], check=False)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)   # by its PID, never by name
            self.proc.wait(10)
        self.proc = None
        run(["ip", "link", "del", self.host_if], check=False)   # takes the peer with it
        run(["ip", "netns", "del", self.ns], check=False)
        self.made = False

    def remove(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None
        if self.made:
            run(["ip", "link", "del", self.host_if], check=False)
            run(["ip", "netns", "del", self.ns], check=False)
            self.made = False


def gateway(name, redis):
    p = h.Proxy(name=name, limits={"max_auth_failures": 20})
    p.config["guard"] = dict(FAST, state_file=os.path.join(p.dir, "guard.state"),
                             control_socket=os.path.join(p.dir, "control.sock"))
    p.config["state"] = {"backend": "redis", "address": "%s:6379" % redis.address, "password": PASSWORD,
                         "command_timeout": 300, "connect_timeout": 300, "retry_interval": 1}
    return p


class RedisHostReboots(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or shutil.which("ip") is None:
            raise unittest.SkipTest("needs root and ip(8)")
        cls.redis = RedisHost()
        cls.gateways = []
        try:
            cls.redis.boot()
            for name in ("reboot-a", "reboot-b"):
                p = gateway(name, cls.redis)
                cls.gateways.append(p)
                p.start()
                assert p.wait_log("connected to Redis at"), p.log_text()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for p in cls.gateways:
            p.stop()
        cls.redis.remove()

    def test_a_ban_made_after_the_reboot_reaches_the_other_gateway(self):
        a, b = self.gateways
        self.redis.crash()
        self.redis.boot()   # same address, a new host: the old connections are half-open
        rebooted = time.monotonic()
        # A customer on a: its fan-out update finds a's main connection dead, which comes back
        # and reads the fleet's bans once (there are none yet).  a's subscriber has not written.
        log_before = len(a.log_text())
        code, _, _ = refused_reply("127.0.0.1", a.port)
        self.assertEqual(code, 220)
        self.assertTrue(wait_for(lambda: "is back after" in a.log_text()[log_before:], 10), a.log_text())
        # Now a guesser is banned on b, whose connection learns of the reboot the same way:
        # the ban goes to Redis, which publishes it to the subscribers it has, not to a's.
        fail_auth("127.0.0.9", b.port, 5)
        self.assertTrue(b.wait_log("AUTH failures from 127.0.0.9", timeout=10), b.log_text())
        # Only a keepalive probe finds a's dead subscription; then a subscribes again and reads
        # the fleet's bans back.  Without it, a would never refuse the guesser.
        deadline = rebooted + 3 * KEEPALIVE + 5
        while time.monotonic() < deadline:
            code, text, _ = refused_reply("127.0.0.9", a.port)
            if code == 421 and "too many failed authentications" in text:
                break
            time.sleep(0.5)
        else:
            self.fail("gateway a never saw the ban made on b after Redis' host rebooted:\n" + a.log_text())
        print("ban reached gateway a %.1f s after the reboot" % (time.monotonic() - rebooted))
        self.assertIn("Redis subscription at %s:6379 unreachable" % self.redis.address, a.log_text())


if __name__ == "__main__":
    unittest.main()
