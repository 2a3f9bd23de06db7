"""A local port that reaches a port of a pod's own address from inside the pod, through `kubectl
exec`: for when this machine cannot reach the pod (nor the Service) directly.

Why not `kubectl port-forward`: it (like the Kubernetes API's port-forward it uses) connects to
`localhost:<port>` in the pod's network namespace, and the node's processes (REST API, redis-server
shards, sentinels) listen on the pod's address only. So each connection to the local port runs
`kubectl exec -i <pod> -- python3 -c RELAY <pod ip> <port>` (python3 is in the project's image): a
byte relay between the exec's stdin/stdout and a TCP connection made inside the pod. Bytes pass
through unchanged, so TLS stays end to end (the client still checks the certificate). It needs the
user's `create pods/exec` permission; each new connection costs one exec (about a second), so
clients that keep their connection (the REST client, redis-cli) pay it once."""

from __future__ import annotations

import asyncio
import contextlib

# Runs in the pod: stdin -> the TCP connection, the TCP connection -> stdout, until either ends.
RELAY = """\
import os, socket, sys, threading
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 10)
s.settimeout(None)
def up():
    try:
        while True:
            data = os.read(0, 65536)
            if not data:
                break
            s.sendall(data)
    finally:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
threading.Thread(target=up, daemon=True).start()
while True:
    data = s.recv(65536)
    if not data:
        break
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]
"""
CHUNK = 65536


class Tunnel:
    """127.0.0.1:<local> -> <address>:<port> seen from inside `pod` (container `container`)."""

    def __init__(self, kubectl: list[str], pod: str, container: str | None, address: str, port: int) -> None:
        self.kubectl, self.pod, self.container = kubectl, pod, container
        self.address, self.port = address, port
        self.local: int | None = None
        self.last_error = ""  # what the last exec that failed said (for the user)
        self._server: asyncio.Server | None = None
        self._processes: set[asyncio.subprocess.Process] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def argv(self) -> list[str]:
        container = ["-c", self.container] if self.container else []
        return [*self.kubectl, "exec", "-i", self.pod, *container, "--",
                "python3", "-c", RELAY, self.address, str(self.port)]

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.local = int(self._server.sockets[0].getsockname()[1])
        return self.local

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            self.last_error = f"kubectl exec: {exc}"
            writer.close()
            return
        self._processes.add(process)
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        try:
            upstream = asyncio.create_task(_pump_to_process(reader, process.stdin))
            downstream = asyncio.create_task(_pump_from_process(process.stdout, writer))
            errors = asyncio.create_task(process.stderr.read())
            await downstream
            upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await upstream
            said = (await errors).decode(errors="replace").strip()
            if said:
                self.last_error = " ".join(said.split())[-500:]
        finally:
            self._processes.discard(process)
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), 5)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def stop(self) -> None:
        """Stop listening, end every relay (its kubectl exec) and wait for their connections to close."""
        if self._server is not None:
            self._server.close()
        for process in list(self._processes):
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        tasks = list(self._tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=10)
            for task in late:
                task.cancel()


async def _pump_to_process(reader: asyncio.StreamReader, stdin: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            stdin.write(data)
            await stdin.drain()
    finally:
        with contextlib.suppress(OSError):
            stdin.close()


async def _pump_from_process(stdout: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await stdout.read(CHUNK):
            writer.write(data)
            await writer.drain()
