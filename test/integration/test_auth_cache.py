"""The credential cache (auth.cache_ttl, issue 10 item 1): a PLAIN or LOGIN success is answered
from memory for the TTL, without Cyrus opening sasldb.  Shown by taking the database away
after the first login: the same name and password still get 235 (and the hit is counted), any
other pair goes to the backend and gets its verdict (454: the database is missing).  A changed
password replaces the cached one; the TTL ends it; 0 switches it off; and nothing of the
password reaches the log."""
import os
import subprocess
import time
import unittest
import urllib.request

import harness as h


def proxy(name, **auth):
    p = h.Proxy(name=name)
    p.config["auth"] = dict(p.config["auth"], **auth)
    p.config["status"] = {"address": "127.0.0.1", "port": h.free_port()}
    return p


def auth_code(p, mech, user, password):
    c = h.RawClient(p.port)
    c.reply()
    c.cmd("EHLO customer.example")
    c.starttls()
    c.cmd("EHLO customer.example")
    code, _ = h.auth(c, mech, user, password)
    c.close()
    return code


def cache_hits(p):
    url = "http://127.0.0.1:%d/metrics" % p.config["status"]["port"]
    with urllib.request.urlopen(url, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("subproxy_auth_cache_hits_total "):
                return int(float(line.split()[1]))
    raise AssertionError("no subproxy_auth_cache_hits_total")


class CredentialCache(unittest.TestCase):
    def hide_db(self, p):
        db = os.path.join(p.dir, "sasl", "sasldb2")
        os.rename(db, db + ".away")
        self.addCleanup(lambda: os.path.exists(db + ".away") and os.rename(db + ".away", db))
        return db

    def test_a_success_is_answered_without_the_backend_for_plain_and_login(self):
        with proxy("cache-hit") as p:
            for mech in ("PLAIN", "LOGIN"):
                self.assertEqual(auth_code(p, mech, "alice", h.USERS["alice"]), 235)
            self.assertEqual(cache_hits(p), 1)  # LOGIN found PLAIN's entry
            self.hide_db(p)
            for mech in ("PLAIN", "LOGIN"):
                self.assertEqual(auth_code(p, mech, "alice", h.USERS["alice"]), 235, mech)
            self.assertEqual(cache_hits(p), 3)
            # Anything else is the backend's to judge, and it is gone: 454, not a cached yes.
            self.assertEqual(auth_code(p, "PLAIN", "alice", "wrong"), 454)
            self.assertEqual(auth_code(p, "PLAIN", "bob", h.USERS["bob"]), 454)
            # CRAM-MD5 never shows the password: always the backend.
            self.assertEqual(auth_code(p, "CRAM-MD5", "alice", h.USERS["alice"]), 454)
            self.assertNotIn(h.USERS["alice"], p.log_text())

    def test_a_changed_password_replaces_the_cached_one(self):
        with proxy("cache-change") as p:
            self.assertEqual(auth_code(p, "PLAIN", "alice", h.USERS["alice"]), 235)
            db = os.path.join(p.dir, "sasl", "sasldb2")
            subprocess.run(["saslpasswd2", "-f", db, "-u", "proxy.test", "-p", "alice"], input=b"new-secret",
                           check=True)
            self.assertEqual(auth_code(p, "PLAIN", "alice", "new-secret"), 235)  # the backend says yes
            self.assertEqual(auth_code(p, "PLAIN", "alice", h.USERS["alice"]), 535)  # and the old is gone

    def test_the_ttl_ends_it_and_zero_turns_it_off(self):
        with proxy("cache-ttl", cache_ttl=2) as p:
            self.assertEqual(auth_code(p, "PLAIN", "alice", h.USERS["alice"]), 235)
            self.hide_db(p)
            self.assertEqual(auth_code(p, "PLAIN", "alice", h.USERS["alice"]), 235)
            time.sleep(2.5)
            self.assertEqual(auth_code(p, "PLAIN", "alice", h.USERS["alice"]), 454)
        with proxy("cache-off", cache_ttl=0) as p:
            self.assertEqual(auth_code(p, "PLAIN", "alice", h.USERS["alice"]), 235)
            self.hide_db(p)
            self.assertEqual(auth_code(p, "PLAIN", "alice", h.USERS["alice"]), 454)
            self.assertEqual(cache_hits(p), 0)


if __name__ == "__main__":
    unittest.main()
