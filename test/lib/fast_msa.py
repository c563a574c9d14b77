#!/usr/bin/env python3
"""Test helper: a minimal plain-text SMTP responder for load tests, in a process of its own.

    python3 test/lib/fast_msa.py PORT      # prints "ready" once it listens on 127.0.0.1:PORT

It answers 220 at connect, EHLO with PIPELINING and XCLIENT, 220 to XCLIENT (as Postfix does),
221 to QUIT and 250 to anything else; it keeps nothing.  One asyncio loop holds thousands of
sessions; the real Postfix MSA of the suite (msa.py) is for what is delivered, not for load.
"""
import asyncio
import sys

EHLO = (b"250-fast.msa\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
        b"250 XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT\r\n")


async def session(reader, writer):
    try:
        writer.write(b"220 fast.msa ESMTP\r\n")
        while True:
            line = await reader.readline()
            if not line:
                break
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(EHLO)
            elif verb == b"XCLIENT":
                writer.write(b"220 fast.msa ESMTP\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                break
            else:
                writer.write(b"250 2.0.0 Ok\r\n")
            await writer.drain()
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(port):
    # asyncio listens again with its own backlog (100 by default): an overflowing accept queue
    # leaves a connecting client, which waits for our 220, hanging (SYN cookies).
    server = await asyncio.start_server(session, "127.0.0.1", port, backlog=4096, reuse_address=True)
    print("ready", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
