"""Mail programs we did not write, as customers and applications run them: each sends one message
through subproxy (STARTTLS, AUTH as alice) to the real Postfix MSA, and the message must arrive
there exactly once with "(Authenticated sender: alice)".

The clients, all from Debian packages (test/deps.sh installs them):
  s-nail        Debian's mailx (bsd-mailx has no SMTP)
  mutt          SMTP through its own code, AUTH through Cyrus SASL
  git send-email  Net::SMTP + Authen::SASL underneath, as git configures them
  msmtp         the common sendmail replacement (GnuTLS)
  Net::SMTP     Perl's libnet with Authen::SASL and IO::Socket::SSL (test/clients/send.pl)
  PHPMailer     Debian's libphp-phpmailer under php-cli (test/clients/send.php)
  nodemailer    Debian's node-nodemailer (test/clients/send.js; NODE_PATH=/usr/share/nodejs)
(curl and Python's smtplib are driven by test_relay.py.)

Every client verifies the proxy's certificate against certs/ca.pem and the name "proxy.test",
and connects to 127.0.0.1; none runs unverified.  msmtp, Net::SMTP, PHPMailer and nodemailer can
be told the name to verify apart from the address to dial.  s-nail, mutt and git send-email
cannot (they verify the host they dial; s-nail compares DNS names only, never IP SANs), so they
dial "proxy.test" inside a private mount namespace whose /etc/hosts maps it to 127.0.0.1
(unshare -m: the machine's own /etc/hosts stays untouched; the tests run as root).

Who sends "AUTH PLAIN" with no initial response, so that the proxy must answer "334 " (RFC 4954
§4: "334" SP, even for an empty challenge): s-nail and PHPMailer.  mutt, msmtp, git send-email,
Net::SMTP and nodemailer send the initial response on the AUTH line.

Every client runs against both auth backends: "sasl" (subproxy checks the password) and
"upstream" (the MSA does, the exchange is relayed) -- the same flow a customer sees either way.
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import uuid

import harness as h

CA = os.path.join(h.CERTS, "ca.pem")
CLIENTS_DIR = os.path.join(h.REPO, "test", "clients")
USER = "alice"
PASSWORD = h.USERS[USER]
TIMEOUT = 30        # per client run; a healthy one takes well under a second


def need(tool):
    """The program's path; a missing one is an install fault (make deps), not a reason to skip."""
    path = shutil.which(tool)
    if path is None:
        raise AssertionError("%s is not installed: run make deps (test/deps.sh)" % tool)
    return path


def run(argv, scratch, stdin=None, env=None):
    """Runs one client with HOME in its scratch directory (no user's rc file, dead.letter or
    debug file lands elsewhere); returns (exit code, everything it printed)."""
    full_env = dict(os.environ, HOME=scratch, GIT_CONFIG_NOSYSTEM="1", LC_ALL="C.UTF-8")
    full_env.update(env or {})
    r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=full_env, cwd=scratch, timeout=TIMEOUT)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def resolving_proxy_test(argv, scratch):
    """argv run where "proxy.test" resolves to 127.0.0.1: /etc/hosts replaced by a bind mount in
    a mount namespace of its own (private propagation: nothing leaks to the machine)."""
    hosts = os.path.join(scratch, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost proxy.test\n")
    return [need("unshare"), "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"', hosts] + argv


def rfc822(subject, client):
    return ("From: alice@example.com\nTo: bob@example.com\nSubject: %s\n\nSent by %s through subproxy.\n"
            % (subject, client)).encode()


# ----------------------------------------------------------------------------------------------
# One function per client: send(port, mech, subject, scratch) -> (exit code, transcript).

def send_snail(port, mech, subject, scratch):
    # -# batch mode, -n no system mailrc, MAILRC=/dev/null no user one; -vv prints the SMTP
    # dialogue (">>> SERVER: ...").  tls-verify=strict: refuse on any certificate problem.
    # nosave: a failed send must not leave a dead.letter (s-nail takes root's home from the
    # password database, not from $HOME).
    argv = [need("s-nail"), "-#", "-n", "-vv", "-Sv15-compat", "-Sttycharset=utf-8", "-Snosave",
            "-Smta=smtp://%s:%s@proxy.test:%d" % (USER, PASSWORD, port),
            "-Ssmtp-use-starttls", "-Ssmtp-auth=" + mech.lower(),
            "-Stls-ca-file=" + CA, "-Stls-ca-no-defaults", "-Stls-verify=strict",
            "-Sfrom=alice@example.com", "-s", subject, "bob@example.com"]
    return run(resolving_proxy_test(argv, scratch), scratch, stdin=b"Sent by s-nail through subproxy.\n",
               env={"MAILRC": "/dev/null"})


def send_mutt(port, mech, subject, scratch):
    # certificate_file is mutt's trust store: only the test CA in it.  Batch mode cannot ask
    # the user about an untrusted certificate, so a verification failure fails the send.
    # mech None: no smtp_authenticators, as most users leave it; Cyrus SASL then picks the
    # strongest mechanism offered (CRAM-MD5 here).
    rc = os.path.join(scratch, "muttrc")
    with open(rc, "w") as f:
        f.write('set smtp_url = "smtp://%s@proxy.test:%d"\n' % (USER, port)
                + 'set smtp_pass = "%s"\n' % PASSWORD
                + ('set smtp_authenticators = "%s"\n' % mech.lower() if mech else "")
                + "set ssl_starttls = yes\nset ssl_force_tls = yes\n"
                + 'set certificate_file = "%s"\n' % CA
                + 'set from = "alice@example.com"\nset use_from = yes\nset record = ""\n'
                + 'set folder = "%s"\nset spoolfile = "%s/spool"\n' % (scratch, scratch))
    # -d 5: the SMTP dialogue goes to $HOME/.muttdebug0 (HOME is the scratch directory).
    argv = [need("mutt"), "-n", "-d", "5", "-F", rc, "-s", subject, "bob@example.com"]
    code, out = run(resolving_proxy_test(argv, scratch), scratch, stdin=b"Sent by mutt through subproxy.\n")
    try:
        with open(os.path.join(scratch, ".muttdebug0"), errors="replace") as f:
            out += "\n-- mutt debug file:\n" + f.read()
    except FileNotFoundError:
        pass
    return code, out


def send_git(port, mech, subject, scratch):
    # A throwaway repository with one commit whose subject is the unique one; send-email
    # mails the patch ("[PATCH] <subject>").
    git = need("git")
    ident = ["-c", "user.name=Alice", "-c", "user.email=alice@example.com"]
    repo = os.path.join(scratch, "repo")
    subprocess.run([git, "init", "-q", repo], check=True, env=dict(os.environ, HOME=scratch))
    with open(os.path.join(repo, "README"), "w") as f:
        f.write("patch for %s\n" % subject)
    steps = [[git] + ident + ["add", "README"],
             [git] + ident + ["commit", "-q", "-m", subject],
             [git] + ident + ["format-patch", "-q", "-1", "-o", "out"]]
    for step in steps:
        subprocess.run(step, cwd=repo, check=True, env=dict(os.environ, HOME=scratch, GIT_CONFIG_NOSYSTEM="1"))
    patches = sorted(os.path.join(repo, "out", p) for p in os.listdir(os.path.join(repo, "out")))
    # --smtp-ssl-cert-path is the CA file to verify against (IO::Socket::SSL SSL_ca_file).
    argv = [git] + ident + ["send-email", "--confirm=never", "--suppress-cc=all", "--no-validate",
                            "--from=alice@example.com", "--to=bob@example.com",
                            "--smtp-server=proxy.test", "--smtp-server-port=%d" % port,
                            "--smtp-encryption=tls", "--smtp-ssl-cert-path=" + CA,
                            "--smtp-user=" + USER, "--smtp-pass=" + PASSWORD, "--smtp-auth=" + mech,
                            "--smtp-debug=1"] + patches
    return run(resolving_proxy_test(argv, scratch), repo, stdin=b"")


def send_msmtp(port, mech, subject, scratch):
    rc = os.path.join(scratch, "msmtprc")
    with open(rc, "w") as f:
        f.write("account proxy\nhost 127.0.0.1\nport %d\n" % port
                + "tls on\ntls_starttls on\ntls_trust_file %s\ntls_host_override proxy.test\n" % CA
                + "auth %s\nuser %s\npassword %s\n" % (mech.lower(), USER, PASSWORD)
                + "from alice@example.com\naccount default : proxy\n")
    os.chmod(rc, 0o600)     # msmtp refuses a password in a file others can read
    return run([need("msmtp"), "-C", rc, "--debug", "bob@example.com"], scratch,
               stdin=rfc822(subject, "msmtp"))


# Debian's Node.js libraries live in /usr/share/nodejs, which a Node.js not built by Debian
# (NodeSource's) does not search by itself.
NODE_ENV = {"NODE_PATH": "/usr/share/nodejs"}


def _script(interpreter, script, env=None):
    def send(port, mech, subject, scratch):
        return run([need(interpreter), os.path.join(CLIENTS_DIR, script), str(port), mech, subject, CA,
                    USER, PASSWORD], scratch, env=env)
    return send


CLIENTS = {
    "snail": send_snail,
    "mutt": send_mutt,
    "git_send_email": send_git,
    "msmtp": send_msmtp,
    "perl_net_smtp": _script("perl", "send.pl"),
    "php_phpmailer": _script("php", "send.php"),
    "node_nodemailer": _script("node", "send.js", NODE_ENV),
}


class RealClientsBase:
    backend = None        # set by the concrete classes below

    @classmethod
    def setUpClass(cls):
        cls.proxy = h.Proxy(backend=cls.backend, name="clients-" + cls.backend)
        cls.proxy.start()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()

    def deliver(self, client, mech):
        subject = "real client %s %s %s %s" % (client, mech or "default", self.backend, uuid.uuid4().hex[:10])
        msa = h.msa()
        before = len(msa.messages())
        sent_before = self.proxy.log_text().count("status=sent")
        scratch = tempfile.mkdtemp(prefix="client-%s." % client, dir=h.workdir())
        started = time.monotonic()
        code, transcript = CLIENTS[client](self.proxy.port, mech, subject, scratch)
        elapsed = time.monotonic() - started

        def why():
            return ("%s %s (backend %s) exit %d after %.1fs\n-- client output:\n%s\n-- subproxy log:\n%s"
                    % (client, mech, self.backend, code, elapsed, transcript[-6000:],
                       "\n".join(self.proxy.log_text().splitlines()[-15:])))

        self.assertEqual(code, 0, why())
        # The client's own "sent" must mean the MSA has it: delivered, with the identity.
        delivered = h.delivered_since(before)
        mine = [data for _path, data in delivered if subject.encode() in data]
        self.assertEqual(len(mine), 1, "%d copies of %r at the MSA\n%s" % (len(mine), subject, why()))
        self.assertIn(b"(Authenticated sender: alice)", mine[0])
        # Exactly once: the proxy relayed one message for this run (a client retrying after an
        # error we caused would relay a second copy, the MSA may not have delivered it yet).
        self.assertEqual(self.proxy.log_text().count("status=sent") - sent_before, 1, why())


def _add(cls, client, mech):
    name = "test_%s_%s" % (client, mech.lower() if mech else "default_mechanism")
    setattr(cls, name, lambda self: self.deliver(client, mech))


class RealClientsSasl(RealClientsBase, unittest.TestCase):
    """auth.backend "sasl": every client with AUTH PLAIN and with AUTH LOGIN."""
    backend = "sasl"


class RealClientsUpstream(RealClientsBase, unittest.TestCase):
    """auth.backend "upstream": the MSA's own 334/235 replies reach the client through the
    proxy; AUTH PLAIN, the mechanism of the empty-challenge 334 (and mutt's own choice)."""
    backend = "upstream"


for _client in CLIENTS:
    for _mech in ("PLAIN", "LOGIN"):
        _add(RealClientsSasl, _client, _mech)
    _add(RealClientsUpstream, _client, "PLAIN")
for _cls in (RealClientsSasl, RealClientsUpstream):
    _add(_cls, "mutt", None)      # mutt as installed: it chooses the mechanism itself
del _cls    # a TestCase class left in the module namespace would be collected (and run) twice
