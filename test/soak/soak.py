#!/usr/bin/env python3
"""Soak: many messages through subproxy to a real Postfix MSA that is restarted under load.

    make soak                      # 3000 messages, 4 clients, 2 MSA restarts
    test/soak/soak.py --messages 500 --clients 2 --restarts 1

A client behaves like a mail program: a message the proxy answered 250 is done; a 4xx, a
dropped connection or a refused connect means "try again" (the mail program's queue).  At the
end every message must have been accepted once and delivered exactly once (counted by its
unique Subject in the MSA's mailboxes): nothing lost, nothing duplicated.  Prints the counts and
exits 1 on any loss or duplicate.  Needs root (Postfix), talks to 127.0.0.1 only.
"""
import argparse
import collections
import os
import re
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness as h  # noqa: E402

PER_SESSION = 10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--restarts", type=int, default=2)
    args = ap.parse_args()

    msa = h.msa()
    proxy = h.Proxy(name="soak").start()
    todo = collections.deque(range(args.messages))
    lock = threading.Lock()
    accepted = set()
    retries = collections.Counter()
    refused = []
    started = time.monotonic()

    def next_batch():
        with lock:
            return [todo.popleft() for _ in range(min(PER_SESSION, len(todo)))]

    def give_back(batch):
        with lock:
            todo.extend(batch)

    def client():
        while True:
            batch = next_batch()
            if not batch:
                with lock:
                    if len(accepted) + len(refused) >= args.messages:
                        return
                time.sleep(0.2)
                continue
            try:
                c = h.login(proxy.port)
            except Exception:
                retries["login"] += 1
                give_back(batch)
                time.sleep(0.5)
                continue
            done = set()     # answered in this session: 250, 5xx, or handed back for a retry
            try:
                for i, n in enumerate(batch):
                    code = send(c, n)
                    if code == 250:
                        with lock:
                            accepted.add(n)
                        done.add(n)
                    elif 400 <= code < 500:
                        retries[str(code)] += 1
                        give_back(batch[i:])
                        done.update(batch[i:])
                        break
                    else:
                        with lock:
                            refused.append((n, code))
                        done.add(n)
                c.cmd("QUIT")
            except Exception as e:
                # No reply: the mail program tries again later; a message the MSA took just as
                # the connection broke is SMTP's own duplicate window (RFC 5321 §6.1).
                retries[type(e).__name__] += 1
                give_back([n for n in batch if n not in done])
                time.sleep(0.5)
            finally:
                c.close()

    def send(c, n):
        code, _ = c.cmd("MAIL FROM:<alice@example.com>")
        if code != 250:
            return code
        code, _ = c.cmd("RCPT TO:<bob@example.com>")
        if code != 250:
            c.cmd("RSET")
            return code
        code, _ = c.cmd("DATA")
        if code != 354:
            return code
        c.send(("Subject: soak-%d\r\nMessage-Id: <soak-%d@test>\r\n\r\nmessage %d\r\n.\r\n" % (n, n, n)).encode())
        return c.reply()[0]

    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for r in range(args.restarts):
        target = args.messages * (r + 1) // (args.restarts + 1)
        while len(accepted) < target and any(t.is_alive() for t in threads):
            time.sleep(0.1)
        print("soak: restarting the MSA at %d accepted" % len(accepted), flush=True)
        msa.stop()
        time.sleep(1)
        msa.start()
    for t in threads:
        t.join()
    sent_seconds = time.monotonic() - started
    print("soak: %d accepted, %d refused in %.1f s; retried after: %s" %
          (len(accepted), len(refused), sent_seconds, dict(retries)), flush=True)

    deadline = time.monotonic() + 300
    seen = collections.Counter()
    while time.monotonic() < deadline:
        seen = collections.Counter()
        for _path, data in msa.messages():
            m = re.search(rb"\nSubject: soak-(\d+)\n", data)
            if m:
                seen[int(m.group(1))] += 1
        if len(seen) >= len(accepted):
            break
        time.sleep(1)
    time.sleep(2)
    lost = sorted(accepted - set(seen))
    dups = sorted(n for n, k in seen.items() if k > 1)
    print("soak: delivered %d distinct, lost %d, duplicated %d%s" %
          (len(seen), len(lost), len(dups), (" (e.g. %s)" % (lost or dups)[:5]) if lost or dups else ""))
    proxy.stop()
    return 0 if not lost and not dups and not refused and len(accepted) == args.messages else 1


if __name__ == "__main__":
    sys.exit(main())
