"""The `atoma-server` console script: serves, and stops gracefully on SIGTERM/SIGINT even
with a notify stream open."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse
from server_wire import create, post, query, request

SCRIPT = Path(sys.executable).parent / "atoma-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """The script in a subprocess; `ready` is set when uvicorn logs that it is listening."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(SCRIPT), *args, "--port", str(self.port), "--heartbeat", "0.2"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.ready = threading.Event()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            if "Uvicorn running on" in line:
                self.ready.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.mark.skipif(not SCRIPT.exists(), reason="atoma-server is not installed in this venv")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_console_script_serves_and_stops_gracefully(sig):
    server = Running("--db", "memory", "--log-level", "info")
    try:
        assert server.ready.wait(20), "".join(server.log)
        with httpx.Client(timeout=5) as client:
            status, _ = post(client, server.url, request(create("w", "users", "u1", {"a": 1})))
            assert status == 200
            _, body = post(client, server.url, request(query("q", "users")))
            assert body["data"]["results"][0]["data"]["data"][0]["a"] == 1
            with connect_sse(client, "GET", server.url + "/ops/notify") as sse:
                events = sse.iter_sse()
                assert next(events).event == "ready"
                server.proc.send_signal(sig)
                rest = list(events)  # the stream ends instead of hanging the shutdown
            assert all(e.event != "ready" for e in rest)
        # uvicorn re-raises the signal once it has shut down, as a signalled process should.
        assert server.proc.wait(10) in (0, -sig)
        assert any("Shutting down" in line for line in server.log)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(5)
