"""The processes `make bench` measures and drives: the upstream sink, subproxy, nginx's mail
proxy, and the per-thread CPU caps (cgroup v1) of the scaling run.  See bench.py."""

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "integration"))
import harness as h  # noqa: E402  (make_sasldb, libconfig, free_port, wait_port; starts nothing)

CERTS = os.path.join(REPO, "certs")
LOADGEN = os.path.join(HERE, "loadgen")
NGINX = "/usr/sbin/nginx"
NGINX_MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """utime + stime of whole processes (every thread, live or ended)."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / CLK_TCK


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def tasks(pid):
    return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))


def thread_cpu(pid, tid):
    """CPU seconds of one thread (/proc/PID/stat of a leader would sum its whole process)."""
    try:
        with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except FileNotFoundError:
        return 0.0


def host_busy():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def stop_process(proc, log):
    """SIGTERM, up to 15 s, then SIGKILL; the log file closed.  Only our own child."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc:
        log.close()


class Sink:
    """loadgen sink: the MSA both proxies relay to (and the direct sessions' server)."""

    def __init__(self, tmp):
        self.port = h.free_port()
        self.log = open(os.path.join(tmp, "sink.log"), "wb")
        self.proc = subprocess.Popen([LOADGEN, "sink", "-p", str(self.port), "--cert",
                                      os.path.join(CERTS, "msa.pem"), "--key", os.path.join(CERTS, "msa.key")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if not h.wait_port(self.port, proc=self.proc):
            raise RuntimeError("the sink did not start")

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


class Subproxy:
    """subproxy with sasldb AUTH, XCLIENT to the sink; upstream_tls: the MSA leg in STARTTLS."""
    name = "subproxy"

    def __init__(self, tmp, sink, workers=None, upstream_tls=False, max_sessions=9900, tls_detect_ms=None):
        self.dir = tempfile.mkdtemp(prefix="subproxy.", dir=tmp)
        self.port = h.free_port()
        upstream = {"host": "127.0.0.1", "port": sink.port, "tls": "none", "login": "xclient",
                    "connect_timeout": 5}
        if upstream_tls:
            upstream.update({"tls": "starttls", "verify": True, "ca_file": os.path.join(CERTS, "ca.pem"),
                             "server_name": "msa.test"})
        self.config = {
            "hostname": "proxy.test",
            "listen": [{"address": "127.0.0.1", "port": self.port}],
            "tls": {"cert": os.path.join(CERTS, "proxy.pem"), "key": os.path.join(CERTS, "proxy.key")},
            "auth": {"backend": "sasl", "mechanisms": ["PLAIN", "LOGIN"], "sasl_service": "subproxy",
                     "sasl_config_dir": h.make_sasldb(os.path.join(self.dir, "sasl"))},
            "upstream": upstream,
            "user": "root",
            # Every bench client comes from 127.0.0.1: per-address limits and bans would measure
            # the guard, not the proxy (an ISP's customers have many addresses).
            "guard": {"auth_delay": 0, "ban_threshold": 0, "max_sessions_per_client": 0},
            # Two descriptors per session; the fd limit here is 20000.
            "limits": {"max_sessions": max_sessions, "shutdown_grace": 2},
            # nginx's mail proxy here resolves nothing (no `resolver`); subproxy's forward-
            # confirmed reverse lookup of every customer (on by default, as in Postfix) would
            # measure this machine's resolver (not on loopback), not the proxy.
            "client_name": {"lookup": False},
        }
        if workers is not None:
            self.config["workers"] = workers
        if tls_detect_ms is not None:
            # The default holds the greeting 200 ms for a ClientHello (a mail program set to
            # SSL on a STARTTLS port); 0 greets at once, as nginx does.
            self.config["limits"]["tls_detect_ms"] = tls_detect_ms
        self.conf_file = os.path.join(self.dir, "subproxy.conf")
        with open(self.conf_file, "w") as f:
            for key, value in self.config.items():
                f.write("%s = %s;\n" % (key, h.libconfig(value)))
        self.proc = None

    def check(self):
        """subproxy -t: (ok, its output) — "unknown key" while `workers` has not landed."""
        r = subprocess.run([h.SUBPROXY, "-t", "-c", self.conf_file], capture_output=True, text=True)
        return r.returncode == 0, (r.stdout + r.stderr).strip()

    def start(self):
        self.log = open(os.path.join(self.dir, "subproxy.log"), "wb")
        self.proc = subprocess.Popen([h.SUBPROXY, "-f", "-c", self.conf_file], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if not h.wait_port(self.port, proc=self.proc):
            self.stop()
            raise RuntimeError("subproxy did not start: see " + self.log.name)
        return self

    def pids(self):
        return [self.proc.pid]

    def cap_units(self):
        """What the scaling run caps one by one: every thread (event loops, auth workers), as
        (pid, tid)."""
        return [(self.proc.pid, tid) for tid in tasks(self.proc.pid)]

    def stop(self):
        stop_process(self.proc, self.log)


class Nginx:
    """nginx's mail proxy: STARTTLS only, AUTH PLAIN/LOGIN checked by auth_http, which nginx
    answers itself (Auth-Status: OK, the sink as Auth-Server), XCLIENT to the sink."""
    name = "nginx"

    def __init__(self, tmp, sink, workers=1):
        self.dir = tempfile.mkdtemp(prefix="nginx.", dir=tmp)
        os.chmod(self.dir, 0o755)
        self.port, self.auth_port = h.free_port(), h.free_port()
        d = self.dir
        conf = """
load_module %(module)s;
daemon off;
master_process on;
worker_processes %(workers)d;
worker_rlimit_nofile 20000;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path %(d)s/body; proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi; uwsgi_temp_path %(d)s/uwsgi; scgi_temp_path %(d)s/scgi;
    server {
        listen 127.0.0.1:%(auth_port)d;
        location = /auth {
            add_header Auth-Status OK;
            add_header Auth-Server 127.0.0.1;
            add_header Auth-Port %(sink_port)d;
            return 204;
        }
    }
}
mail {
    server_name proxy.test;
    auth_http 127.0.0.1:%(auth_port)d/auth;
    xclient on;
    ssl_certificate %(certs)s/proxy.pem;
    ssl_certificate_key %(certs)s/proxy.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    smtp_auth plain login;
    smtp_capabilities "SIZE 104857600" 8BITMIME PIPELINING;
    server {
        listen 127.0.0.1:%(port)d;
        protocol smtp;
        starttls only;
    }
}
""" % {"module": NGINX_MAIL_MODULE, "workers": workers, "d": d, "auth_port": self.auth_port,
       "sink_port": sink.port, "certs": CERTS, "port": self.port}
        self.conf_file = os.path.join(d, "nginx.conf")
        with open(self.conf_file, "w") as f:
            f.write(conf)
        self.workers = workers
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, "stderr.log"), "wb")
        # -e: the error log before the configuration is read (not /var/log/nginx); -p: prefix.
        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-e", os.path.join(self.dir, "error.log"),
                                      "-c", self.conf_file], stdout=self.log, stderr=subprocess.STDOUT)
        if not h.wait_port(self.port, proc=self.proc):
            self.stop()
            raise RuntimeError("nginx did not start: see %s/error.log" % self.dir)
        deadline = time.monotonic() + 10
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def worker_pids(self):
        out = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                with open(stat) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                out.append(int(stat.split("/")[2]))
        return sorted(out)

    def pids(self):
        return [self.proc.pid] + self.worker_pids()

    def cap_units(self):
        return [(pid, pid) for pid in self.pids()]  # single-threaded: the master and each worker

    def stop(self):
        stop_process(self.proc, self.log)  # SIGTERM: nginx's fast shutdown; the master stops its workers


class CpuCaps:
    """Each thread or process of a proxy in its own cgroup v1 cpu group, limited to CAP % of a
    core: N event loops can then use at most N x CAP %, whatever the load generator does with
    the rest of the machine.  New threads (auth workers started on demand) are capped as they
    appear.  With SHARES > 0 the whole bench (the capped proxy, the load generator started with
    preexec=caps.join, the sink) runs under one parent group of that cpu.shares weight, so that
    other work on a shared machine (each task weighs 1024) cannot starve the load generator
    during the run.  Everything is put back and removed by close()."""

    ROOT = "/sys/fs/cgroup/cpu"

    def __init__(self, target, cap_percent, shares=0, also=(), period_ms=100):
        self.target = target
        self.base = os.path.join(self.ROOT, "subproxy-bench.%d" % os.getpid())
        os.makedirs(self.base, exist_ok=True)
        if shares > 0:
            self._write(self.base, "cpu.shares", shares)
        self.gen = os.path.join(self.base, "generator")
        os.makedirs(self.gen, exist_ok=True)
        self._write(self.gen, "cpu.shares", 2048)  # two load generator threads and the sink
        self.also = [tid for pid in also for tid in tasks(pid)]
        for tid in self.also:
            self._write(self.gen, "tasks", tid)
        self.period = period_ms * 1000
        self.quota = int(self.period * cap_percent / 100)
        self.groups = {}
        self.pid_of = {}
        self.stopping = False
        self.assign()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    @staticmethod
    def _write(group, name, value):
        with open(os.path.join(group, name), "w") as f:
            f.write(str(value))

    def join(self):
        """preexec_fn of the load generator: its process (and the threads it starts) go into
        the bench's group."""
        self._write(self.gen, "tasks", os.getpid())

    @staticmethod
    def available():
        return os.access(os.path.join(CpuCaps.ROOT, "tasks"), os.W_OK)

    def assign(self):
        for pid, tid in self.target.cap_units():
            if tid in self.groups:
                continue
            self.pid_of[tid] = pid
            group = os.path.join(self.base, "t%d" % tid)
            os.makedirs(group, exist_ok=True)
            self._write(group, "cpu.cfs_period_us", self.period)
            self._write(group, "cpu.cfs_quota_us", self.quota)
            try:
                self._write(group, "tasks", tid)
            except OSError:
                pass  # the thread ended meanwhile
            self.groups[tid] = group

    def _watch(self):
        while not self.stopping:
            time.sleep(0.2)
            try:
                self.assign()
            except OSError:
                pass

    def snapshot(self):
        """{tid: (CPU seconds, periods, throttled periods)} of every capped thread/process."""
        out = {}
        for tid, group in self.groups.items():
            with open(os.path.join(group, "cpu.stat")) as f:
                stat = dict(line.split() for line in f)
            out[tid] = (thread_cpu(self.pid_of[tid], tid), int(stat["nr_periods"]), int(stat["nr_throttled"]))
        return out

    def close(self):
        self.stopping = True
        self.thread.join()
        for group in list(self.groups.values()) + [self.gen]:
            try:
                with open(os.path.join(group, "tasks")) as f:
                    tids = f.read().split()
                for tid in tids:
                    self._write(self.ROOT, "tasks", tid)
            except OSError:
                pass  # ended meanwhile
            os.rmdir(group)
        os.rmdir(self.base)


def make_tmp():
    tmp = tempfile.mkdtemp(prefix="subproxy-bench.")
    os.chmod(tmp, 0o755)  # nginx's workers run as nobody
    return tmp


def remove_tmp(tmp):
    shutil.rmtree(tmp, ignore_errors=True)
