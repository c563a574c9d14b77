"""Integration-test harness: a real Postfix MSA, subproxy instances in front of it, and clients.

One Postfix MSA (test/msa/postfix-msa.sh: STARTTLS required, Cyrus SASL sasldb, XCLIENT allowed
from loopback) serves the whole run; each test starts the subproxy configuration it needs on a
free loopback port.  Everything talks to 127.0.0.1 / ::1 only.
"""

import atexit
import base64
import hashlib
import hmac
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
CERTS = os.path.join(REPO, "certs")
SUBPROXY = os.path.join(REPO, "proxy", "subproxy")
sys.path.insert(0, os.path.join(REPO, "test", "lib"))

from msa import PostfixMsa, free_port  # noqa: E402

USERS = {"alice": "alice-secret", "bob": "bob-secret"}   # at the proxy and at the MSA

_msa = None
_workdir = None


def workdir():
    """A per-run scratch directory (world-readable: Postfix daemons must reach into it)."""
    global _workdir
    if _workdir is None:
        _workdir = tempfile.mkdtemp(prefix="subproxy-it.")
        os.chmod(_workdir, 0o755)
        atexit.register(shutil.rmtree, _workdir, True)
    return _workdir


def msa():
    """The shared Postfix MSA, started on first use and stopped at exit."""
    global _msa
    if _msa is None:
        m = PostfixMsa(os.path.join(workdir(), "msa"), free_port(), CERTS)
        m.start()
        atexit.register(m.stop)
        # The start script's readiness probe is a connection too; let its log lines land so
        # that tests counting MSA sessions start from a settled log.
        deadline = time.monotonic() + 5
        while "disconnect from" not in m.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        _msa = m
    return _msa


def free_port6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def libconfig(value, indent=""):
    """Python dict/list/str/int/bool -> libconfig text (enough for our configuration)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) + ("L" if abs(value) >= 2**31 else "")
    if isinstance(value, float):
        return repr(value)    # "0.2": libconfig needs the decimal point
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return "( " + ", ".join(libconfig(v, indent) for v in value) + " )"
        return "[ " + ", ".join(libconfig(v, indent) for v in value) + " ]"
    if isinstance(value, dict):
        return "{ " + " ".join("%s = %s;" % (k, libconfig(v, indent)) for k, v in value.items()) + " }"
    raise TypeError(value)


def make_sasldb(directory, users=USERS, realm="proxy.test", mechs="PLAIN LOGIN CRAM-MD5", extra=""):
    """Cyrus application file + sasldb for subproxy's own password checks."""
    os.makedirs(directory, exist_ok=True)
    db = os.path.join(directory, "sasldb2")
    for user, password in users.items():
        subprocess.run(["saslpasswd2", "-f", db, "-u", realm, "-c", "-p", user],
                       input=password.encode(), check=True)
    with open(os.path.join(directory, "subproxy.conf"), "w") as f:
        f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s\nmech_list: %s\n%s"
                % (db, mechs, extra))
    return directory


class Proxy:
    """A subproxy process with its own config, log and port.  Use as a context manager."""

    def __init__(self, backend="sasl", login="xclient", mechanisms=("PLAIN", "LOGIN", "CRAM-MD5"),
                 upstream=None, limits=None, extra=None, sasl_dir=None, listen=None, name=None,
                 port=None, wait_host="127.0.0.1", preexec_fn=None):
        self.wait_host = wait_host   # where start() waits for the listener (a listen address)
        self.preexec_fn = preexec_fn  # run in the child before exec (e.g. a lower RLIMIT_NOFILE)
        # start() connects to this port to know the proxy serves (default: the listener, which
        # opens a session; the status port does not).
        self.ready_port = None
        self.dir = tempfile.mkdtemp(prefix=(name or "proxy") + ".", dir=workdir())
        os.chmod(self.dir, 0o755)
        self.port = port or free_port()
        self.implicit_port = None
        if sasl_dir is None and backend == "sasl":
            sasl_dir = make_sasldb(os.path.join(self.dir, "sasl"))
        up = {
            "host": "127.0.0.1",
            "port": msa().port,
            "tls": "starttls",
            "verify": True,
            "ca_file": os.path.join(CERTS, "ca.pem"),
            "server_name": "msa.test",
            "login": login,
            "connect_timeout": 5,
        }
        if upstream:
            up.update(upstream)
        auth = {"backend": backend, "mechanisms": list(mechanisms), "sasl_service": "subproxy"}
        if sasl_dir:
            auth["sasl_config_dir"] = sasl_dir
        self.config = {
            "hostname": "proxy.test",
            "listen": listen or [{"address": "127.0.0.1", "port": self.port}],
            "tls": {"cert": os.path.join(CERTS, "proxy.pem"), "key": os.path.join(CERTS, "proxy.key")},
            "auth": auth,
            "upstream": up,
            # Tests run as root with files in private temp dirs; test_privileges.py covers
            # the default (drop to nobody).
            "user": "root",
            # Password-guesser delays, bans and per-address limits off unless a test asks for
            # them (extra={"guard": ...}): many tests fail AUTH on purpose, all from 127.0.0.1.
            # test_guard.py covers the guard itself.
            "guard": {"auth_delay": 0, "ban_threshold": 0, "max_sessions_per_client": 0},
            # No reverse lookups unless a test serves the names (test_client_name.py): the
            # default resolver is this machine's, and test traffic stays on loopback.
            "client_name": {"lookup": False},
        }
        # A test that leaves a client hanging must not wait out the 30 s production drain
        # when it stops the proxy; tests of the drain set their own.
        self.config["limits"] = dict({"shutdown_grace": 2}, **(limits or {}))
        if extra:
            self.config.update(extra)
        self.conf_file = os.path.join(self.dir, "subproxy.conf")
        self.log_file = os.path.join(self.dir, "subproxy.log")
        self.proc = None

    def write_config(self):
        with open(self.conf_file, "w") as f:
            for key, value in self.config.items():
                f.write("%s = %s;\n" % (key, libconfig(value)))

    def start(self):
        self.write_config()
        self._log = open(self.log_file, "ab")
        self.proc = subprocess.Popen([SUBPROXY, "-f", "-c", self.conf_file], stdout=self._log,
                                     stderr=subprocess.STDOUT, preexec_fn=self.preexec_fn)
        if not wait_port(self.ready_port or self.port, host=self.wait_host, proc=self.proc):
            self.stop()
            raise RuntimeError("subproxy did not start:\n" + self.log_text())
        return self

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log.close()
        return self.proc.returncode if self.proc else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def log_text(self):
        try:
            with open(self.log_file, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, needle, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return True
            time.sleep(0.05)
        return False


class Dnsmasq:
    """A real DNS server (dnsmasq) on 127.0.0.1:<port> answering only from `records`, its
    command-line options ("--host-record=name,addr", "--ptr-record=...", "--local=/zone/");
    authoritative for `local_zones`, so that other names there are NXDOMAIN.  queries_log()
    is its log of the queries it got."""

    def __init__(self, records, local_zones=()):
        self.dir = tempfile.mkdtemp(prefix="dnsmasq.", dir=workdir())
        self.port = free_port()
        self.log = os.path.join(self.dir, "queries.log")
        args = [shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--keep-in-foreground", "--port=%d" % self.port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--local-ttl=300", "--log-queries", "--log-facility=" + self.log, "--user=root",
                "--pid-file=" + os.path.join(self.dir, "pid")]
        args += ["--local=/%s/" % z for z in local_zones] + list(records)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "started" not in self.queries_log():
            time.sleep(0.05)

    def queries_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


def subproxy_for_others():
    """A copy of proxy/subproxy that an unprivileged account can run: the checkout may sit
    under a private home directory (a fresh machine clones into /root/project)."""
    binary = os.path.join(workdir(), "subproxy-for-others")
    if not os.path.exists(binary):
        shutil.copy(SUBPROXY, binary)
        os.chmod(binary, 0o755)
    return binary


def client_tls_context():
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
    return ctx


def smtp(port, host="127.0.0.1", ehlo="customer.example", tls=True):
    """smtplib client that did EHLO, STARTTLS (verifying proxy.test) and EHLO again."""
    s = smtplib.SMTP(host, port, local_hostname=ehlo, timeout=20)
    s._host = "proxy.test"    # Python 3.11: the name starttls() verifies
    s.ehlo()
    if tls:
        s.starttls(context=client_tls_context())
        s.ehlo()
    return s


def message(subject, sender="alice@example.com", rcpt="bob@example.com", body="Hello.\r\n"):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-Id: <%s@test>\r\n\r\n%s"
            % (sender, rcpt, subject, subject.replace(" ", "."), body)).encode()


class RawClient:
    """Byte-level SMTP client for protocol tests: exact bytes out, replies parsed in."""

    def __init__(self, port, host="127.0.0.1", timeout=15):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def raw_line(self):
        """The next line exactly as sent, CRLF included."""
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def _line(self):
        return self.raw_line()[:-2].decode("utf-8", "replace")

    def reply(self):
        """(code, [lines]) of the next reply."""
        lines = []
        while True:
            line = self._line()
            lines.append(line[4:])
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def starttls(self, server_name="proxy.test"):
        code, _ = self.cmd("STARTTLS")
        assert code == 220, code
        self.sock = client_tls_context().wrap_socket(self.sock, server_hostname=server_name)
        return code

    def closed(self, timeout=5):
        """True when the server closed the connection (EOF) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def login(port, user="alice", password=None, mech="PLAIN", timeout=15):
    """A RawClient after greeting, EHLO, STARTTLS, EHLO and a successful AUTH."""
    c = RawClient(port, timeout=timeout)
    assert c.reply()[0] == 220
    c.cmd("EHLO customer.example")
    c.starttls()
    c.cmd("EHLO customer.example")
    password = password if password is not None else USERS[user]
    code, text = auth(c, mech, user, password)
    assert code == 235, (code, text)
    return c


def auth_plain_line(user, password):
    """The AUTH PLAIN command line (with its initial response) for `user`."""
    return "AUTH PLAIN " + base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode() + "\r\n"


def auth(c, mech, user, password):
    """Runs one AUTH exchange on RawClient `c`; returns the final (code, lines)."""
    if mech == "PLAIN":
        return c.cmd("AUTH PLAIN " + base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode())
    if mech == "LOGIN":
        code, _ = c.cmd("AUTH LOGIN")
        if code != 334:
            return code, _
        code, _ = c.cmd(base64.b64encode(user.encode()).decode())
        if code != 334:
            return code, _
        return c.cmd(base64.b64encode(password.encode()).decode())
    if mech == "CRAM-MD5":
        code, lines = c.cmd("AUTH CRAM-MD5")
        if code != 334:
            return code, lines
        challenge = base64.b64decode(lines[0])
        digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
        return c.cmd(base64.b64encode((user + " " + digest).encode()).decode())
    raise ValueError(mech)


def client_from(source, port, host="127.0.0.1", family=socket.AF_INET, timeout=15):
    """A RawClient whose connection comes from loopback address `source` (Linux routes all of
    127/8 to lo, so different sources stand for different customers)."""
    c = RawClient.__new__(RawClient)
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((host, port))
    c.sock = s
    c.buf = b""
    return c


def submit(c, subject):
    """On a greeted RawClient: EHLO, STARTTLS, EHLO, AUTH PLAIN as alice, one message, QUIT;
    the final reply code of the message."""
    c.cmd("EHLO customer.example")
    c.starttls()
    c.cmd("EHLO customer.example")
    code, text = auth(c, "PLAIN", "alice", USERS["alice"])
    assert code == 235, (code, text)
    code, _ = send_message(c, subject)
    c.cmd("QUIT")
    c.close()
    return code


def send_message(c, subject, sender="alice@example.com", body="Hello.\r\n"):
    """MAIL/RCPT/DATA (pipelined) of one small message on a logged-in RawClient; returns the
    final (code, lines)."""
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n" % sender)
    codes = [c.reply()[0] for _ in range(3)]
    assert codes == [250, 250, 354], codes
    c.send(message(subject, sender=sender, body=body) + b".\r\n")
    return c.reply()


def delivered_since(count_before, n=1, timeout=15):
    """The messages delivered at the MSA after `count_before` were there."""
    msgs = msa().wait_messages(count_before + n, timeout)
    return msgs[count_before:]


def strace_attached(pid, options, name, action):
    """Runs `action()` with `strace -f OPTIONS` attached to process `pid` (all its threads);
    the path of its output file `name`."""
    out = os.path.join(tempfile.mkdtemp(prefix="strace.", dir=workdir()), name)
    tracer = subprocess.Popen(["strace", "-f"] + options + ["-o", out, "-p", str(pid)], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # attached to every thread
        action()
        time.sleep(0.5)  # the last session's teardown
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait()
    return out


def strace_counts(pid, action):
    """System calls of process `pid` (all its threads) while `action()` runs: {name: count},
    from `strace -f -c` attached for the duration."""
    out = strace_attached(pid, ["-c"], "counts.txt", action)
    calls = {}
    with open(out) as f:
        for line in f:
            parts = line.split()
            # % time, seconds, usecs/call, calls, [errors], syscall
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                calls[parts[-1]] = int(parts[3])
    return calls


def strace_sends(pid, action):
    """The send(2)s of process `pid` (all its threads) while `action()` runs, in order:
    [(fd, first bytes, length)], from `strace -f -e trace=sendto` attached for the duration."""
    out = strace_attached(pid, ["-xx", "-s", "8", "-e", "trace=sendto"], "sends.txt", action)
    sends = []
    with open(out) as f:
        for line in f:
            m = re.search(r'sendto\((\d+), "((?:\\x[0-9a-f]{2})*)".* = (\d+)$', line)
            if m:
                sends.append((int(m.group(1)), bytes.fromhex(m.group(2).replace("\\x", "")), int(m.group(3))))
    return sends


# ----------------------------------------------------------------------------------------------
# fail2ban: the shipped filters run by the real fail2ban-regex on what subproxy logged.

def fail2ban_filter(name):
    """Path of examples/fail2ban/filter.d/<name>.conf installed next to fail2ban's common.conf
    in a scratch directory (the layout fail2ban-regex expects), or None without fail2ban."""
    if not shutil.which("fail2ban-regex"):
        return None
    conf = tempfile.mkdtemp(prefix="f2b.", dir=workdir())
    os.makedirs(os.path.join(conf, "filter.d"))
    shutil.copy("/etc/fail2ban/filter.d/common.conf", os.path.join(conf, "filter.d"))
    shutil.copy(os.path.join(REPO, "examples", "fail2ban", "filter.d", name + ".conf"), os.path.join(conf, "filter.d"))
    return os.path.join(conf, "filter.d", name + ".conf")


def fail2ban_regex(logfile, filter_spec, out=None):
    """Lines matched (an int), or with `out` ("ip", "user", ...) the values fail2ban extracted."""
    r = subprocess.run(["fail2ban-regex"] + (["--out", out] if out else []) + [logfile, filter_spec],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("fail2ban-regex failed:\n" + r.stdout + r.stderr)
    if out:
        return r.stdout.split()
    m = re.search(r"Lines: \d+ lines, \d+ ignored, (\d+) matched", r.stdout)
    if not m:
        raise AssertionError("unexpected fail2ban-regex output:\n" + r.stdout)
    return int(m.group(1))


def as_syslog(proxy, path):
    """Writes what `proxy` logged (-f copies to stderr) as syslog would have written it;
    returns the bare lines."""
    lines = [l[len("subproxy: "):] for l in proxy.log_text().splitlines() if l.startswith("subproxy: ")]
    with open(path, "w") as f:
        for l in lines:
            f.write("Nov 22 11:30:01 proxyhost subproxy[4242]: %s\n" % l)
    return lines


# ----------------------------------------------------------------------------------------------
# A scripted fake MSA for faults a real Postfix cannot be made to produce on demand.

class ThreadedServer:
    """Accept loop on a listening socket, one thread per connection, stopped by the context
    manager: the shared part of the scripted servers below and in the tests."""

    def __init__(self, sock):
        self.srv = sock
        self.srv.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.conns = []

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.thread.join(5)
        self.srv.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        return False

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        raise NotImplementedError


class FakeMsa(ThreadedServer):
    """Threaded TLS-capable SMTP server on loopback with a fault switch.

    fault: None | "die_after_dot" | "no_starttls" | "inject_after_220" | "silent_after_dot" |
           "slow_after_dot" (answers 250 after 3 s) | "extra_reply_after_mail" (two replies to MAIL)
    implicit: TLS from the first byte (upstream tls = "implicit"), no STARTTLS offered
    xclient_code: the reply to XCLIENT (Postfix says 220; smtp-sink, Exim, Dovecot may say 250)
    caps: EHLO keywords instead of the default ones (STARTTLS, XCLIENT and AUTH are still added)
    Records every line it received in .lines and counts MAIL commands in .mails.
    """

    DEFAULT_CAPS = ("PIPELINING", "SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES")

    def __init__(self, fault=None, cert="msa", xclient=True, implicit=False, xclient_code=220, caps=None,
                 greet_delay=0):
        self.greet_delay = greet_delay  # seconds before the 220 (a slow MSA to connect to)
        self.fault = fault
        self.implicit = implicit
        self.xclient = xclient
        self.xclient_code = xclient_code
        self.caps = list(caps if caps is not None else self.DEFAULT_CAPS)
        self.port = free_port()
        self.lines = []
        self.mails = 0
        self.dots = 0
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(CERTS, cert + ".pem"), os.path.join(CERTS, cert + ".key"))
        super().__init__(socket.create_server(("127.0.0.1", self.port)))

    def handle(self, conn):
        tls = False
        if self.implicit:
            try:
                conn = self.ctx.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                return
            self.conns.append(conn)
            tls = True
        f = conn.makefile("rb")

        def send(text):
            conn.sendall(text.encode())

        try:
            time.sleep(self.greet_delay)
            send("220 fake.msa ESMTP\r\n")
            in_data = False
            while True:
                line = f.readline()
                if not line:
                    return
                self.lines.append(line)
                if in_data:
                    if line == b".\r\n":
                        in_data = False
                        self.dots += 1
                        if self.fault == "die_after_dot":
                            conn.shutdown(socket.SHUT_RDWR)
                            conn.close()
                            return
                        if self.fault == "silent_after_dot":
                            time.sleep(30)
                            return
                        if self.fault == "slow_after_dot":
                            time.sleep(3)
                        send("250 2.0.0 Ok: queued as FAKE%d\r\n" % self.dots)
                    continue
                verb = line.split(b" ")[0].strip().upper()
                if verb == b"EHLO":
                    caps = ["fake.msa"] + self.caps
                    if not tls and self.fault != "no_starttls":
                        caps.append("STARTTLS")
                    if self.xclient:
                        caps.append("XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT")
                    caps.append("AUTH PLAIN LOGIN")
                    send("".join("250-%s\r\n" % c for c in caps[:-1]) + "250 %s\r\n" % caps[-1])
                elif verb == b"STARTTLS":
                    if self.fault == "inject_after_220":
                        send("220 2.0.0 Ready\r\n250 injected\r\n")
                    else:
                        send("220 2.0.0 Ready\r\n")
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                    self.conns.append(conn)
                    f = conn.makefile("rb")
                    tls = True
                elif verb == b"XCLIENT":
                    send("220 fake.msa ESMTP\r\n" if self.xclient_code == 220 else "%d 2.0.0 Ok\r\n" % self.xclient_code)
                elif verb == b"AUTH":
                    send("235 2.7.0 Authentication successful\r\n")
                elif verb == b"MAIL":
                    self.mails += 1
                    send("250 2.1.0 Ok\r\n")
                    if self.fault == "extra_reply_after_mail":
                        send("250 2.0.0 injected\r\n")
                elif verb == b"RCPT":
                    send("250 2.1.5 Ok\r\n")
                elif verb == b"DATA":
                    in_data = True
                    send("354 End data with <CR><LF>.<CR><LF>\r\n")
                elif verb == b"QUIT":
                    send("221 2.0.0 Bye\r\n")
                    return
                else:
                    send("250 2.0.0 Ok\r\n")
        except (OSError, ssl.SSLError):
            return
