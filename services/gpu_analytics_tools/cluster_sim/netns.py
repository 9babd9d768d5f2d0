"""The simulation's own network namespace, and the forwarders that let the host reach it.

Without kube-proxy an API server dials Service IPs (admission webhooks, aggregated APIs)
straight out of the default route. The supervisor therefore moves itself, and so every
process it starts, into a new network namespace with only loopback up: nothing there can
reach another address. It binds the host-side listeners first, so kubectl and the argocd
CLI on the host reach the API server and argocd-server through them. The one way out is a
port forwarded to a Unix socket on the host's file system, for a test's webhook receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import subprocess
from pathlib import Path

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def enter_new_netns() -> None:
    """unshare(CLONE_NEWNET) for this process (call it before starting any thread), then
    bring loopback up. Needs CAP_SYS_ADMIN (root)."""
    if _libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise PermissionError(
            err, f"unshare(CLONE_NEWNET) failed: {os.strerror(err)} (the simulation needs root)"
        )
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def netns_inode(pid: int | str = "self") -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def remote_addresses(pid: int) -> set[str]:
    """Remote IPv4/IPv6 addresses of every TCP connection in `pid`'s network namespace."""
    found: set[str] = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote_hex, state = fields[2].split(":")[0], fields[3]
            if state == "0A":  # LISTEN: no peer
                continue
            raw = bytes.fromhex(remote_hex)
            if len(raw) == 4:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def bind_listener(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:port (0 = any free port) in the current namespace."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


async def forward(listener: socket.socket, target_port: int) -> asyncio.Server:
    """Accept on `listener` (a host-namespace socket) and connect each client to
    127.0.0.1:target_port in this process's namespace."""

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            inner_r, inner_w = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, inner_w), _pipe(inner_r, client_w))

    return await asyncio.start_server(handle, sock=listener)


async def forward_to_unix(port: int, path: Path) -> asyncio.Server:
    """Accept on 127.0.0.1:port in this process's namespace and connect each client to the
    Unix socket `path` (a file, so reachable from any namespace); a client is closed when
    nothing listens there."""

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            inner_r, inner_w = await asyncio.open_unix_connection(str(path))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, inner_w), _pipe(inner_r, client_w))

    return await asyncio.start_server(handle, "127.0.0.1", port)
