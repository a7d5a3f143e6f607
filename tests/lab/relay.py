"""The lab's user-space network: delaying TCP relays and silent listeners, one process.

tc netem is not available on this kernel, so latency is injected here: every chunk
read on one side is written to the other side RTT/2 later (per direction, in order).
Listening and upstream sockets are created inside each host's network namespace
(setns on this thread, then back), so all traffic stays inside the lab namespaces.

Spec (JSON on argv[1]): [{"netns": NAME, "mode": "relay"|"silent",
  "listen": [ip, port], "upstream": [ip, port], "delay_ms": one-way delay}]
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import socket
import sys

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class Namespaces:
    def __init__(self):
        self.root = os.open("/proc/self/ns/net", os.O_RDONLY)
        self.fds: dict[str, int] = {}

    def fd(self, name: str) -> int:
        if name not in self.fds:
            self.fds[name] = os.open(f"/run/netns/{name}", os.O_RDONLY)
        return self.fds[name]

    def socket_in(self, name: str, **kw) -> socket.socket:
        setns(self.fd(name))
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM, **kw)
        finally:
            setns(self.root)


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    q: asyncio.Queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await q.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(65536)
            q.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()


async def serve(ns: Namespaces, entry: dict) -> None:
    loop = asyncio.get_running_loop()
    lsock = ns.socket_in(entry["netns"])
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(tuple(entry["listen"]))
    lsock.listen(512)
    lsock.setblocking(False)
    delay = entry.get("delay_ms", 0) / 1000.0
    held = []

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        if entry["mode"] == "silent":
            held.append(cw)  # accept TCP, never say a word
            return
        usock = ns.socket_in(entry["netns"])
        usock.setblocking(False)
        try:
            await loop.sock_connect(usock, tuple(entry["upstream"]))
        except OSError:
            usock.close()
            cw.close()
            return
        usock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ur, uw = await asyncio.open_connection(sock=usock)
        try:
            await asyncio.gather(pump(cr, uw, delay), pump(ur, cw, delay))
        finally:
            for w in (uw, cw):
                try:
                    w.close()
                except OSError:
                    pass

    await asyncio.start_server(handle, sock=lsock)


async def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    ns = Namespaces()
    for entry in spec:
        await serve(ns, entry)
    print("READY", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
