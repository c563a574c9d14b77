"""Test helper: a throwaway Postfix MSA for subproxy's integration tests (stdlib only).

    from msa import PostfixMsa, free_port
    msa = PostfixMsa(tmpdir, free_port(), repo + "/certs")
    msa.start()
    ...                              # send through subproxy to 127.0.0.1:msa.port
    [(path, data)] = msa.wait_messages(1)
    assert b"(Authenticated sender: alice)" in data
    msa.stop()

The instance is run by test/msa/postfix-msa.sh (see there for the exact configuration):
127.0.0.1:port only, STARTTLS required (certs/msa.pem, name msa.test), AUTH PLAIN/LOGIN/CRAM-MD5
with sasldb users alice/alice-secret and bob/bob-secret (realm msa.test; clients log in with the
bare name), XCLIENT allowed from 127.0.0.0/8, relay only when authenticated.  Delivered mail is
in Maildirs under DIR/mail (DIR/mail/<domain>/<user>/new/ for alice..eve@example.com and other
test domains, DIR/mail/catchall/new/ for everybody else); the log is DIR/maillog.
"""

import os
import socket
import subprocess
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.normpath(os.path.join(_HERE, "..", "msa", "postfix-msa.sh"))


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (the kernel picks it; small race accepted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class PostfixMsa:
    def __init__(self, dir, port, certdir):
        self.dir = os.path.abspath(dir)
        self.port = int(port)
        self.certdir = os.path.abspath(certdir)
        self.mail_dir = os.path.join(self.dir, "mail")
        self.log_file = os.path.join(self.dir, "maillog")
        self.running = False

    def start(self):
        """Start the instance; returns when the port accepts connections.

        Raises RuntimeError with the script's output (which includes the log tail) on failure.
        """
        r = subprocess.run([SCRIPT, "start", self.dir, str(self.port), self.certdir],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("postfix-msa.sh start failed (%d):\n%s" % (r.returncode, r.stdout))
        self.running = True
        return self

    def stop(self):
        """Stop the instance; safe to call twice or after a failed start."""
        subprocess.run([SCRIPT, "stop", self.dir],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.running = False

    def postconf(self, **settings):
        """Changes main.cf settings of the running instance (postconf -e) and reloads it."""
        etc = os.path.join(self.dir, "etc")
        subprocess.run(["postconf", "-c", etc, "-e"] + ["%s=%s" % kv for kv in settings.items()],
                       check=True)
        subprocess.run(["postfix", "-c", etc, "reload"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def messages(self):
        """Delivered messages as [(path, bytes)], oldest first (Maildir new/ and cur/ files)."""
        found = []
        for root, _dirs, files in os.walk(self.mail_dir):
            if os.path.basename(root) not in ("new", "cur"):
                continue
            for name in files:
                path = os.path.join(root, name)
                try:
                    st = os.stat(path)
                    with open(path, "rb") as f:
                        found.append((st.st_mtime, path, f.read()))
                except FileNotFoundError:
                    continue        # moved between listing and reading
        found.sort()
        return [(path, data) for _mtime, path, data in found]

    def wait_messages(self, n, timeout=10.0):
        """Wait until at least n messages were delivered; return messages().

        Raises TimeoutError (with the log tail) if fewer than n arrive in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if len(msgs) >= n:
                return msgs
            if time.monotonic() >= deadline:
                tail = "\n".join(self.log_text().splitlines()[-20:])
                raise TimeoutError("expected %d message(s) under %s, found %d; maillog tail:\n%s"
                                   % (n, self.mail_dir, len(msgs), tail))
            time.sleep(0.05)

    def log_text(self):
        """The instance's mail log so far ("" if none yet)."""
        try:
            with open(self.log_file, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""
