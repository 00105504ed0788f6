"""Test helpers: run an app on a real loopback port in a background thread.

`ServerThread(app)` binds a free port (or a given one, to restart on the same port), starts a
`Server` in a daemon thread and waits for it to be ready; `stop()` shuts it down gracefully.
Imports uvicorn and this package only.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import uvicorn

from ._server import Server

__all__ = ["ServerThread"]


class ServerThread:
    """One uvicorn server on 127.0.0.1, in a thread, for tests and demos."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        self.app = app
        self.host = host
        self.port = port
        config.setdefault("log_level", "warning")
        config.setdefault("lifespan", "off")
        config.setdefault("timeout_graceful_shutdown", 5)
        self._config = config
        self.server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Bind, start and wait until the server accepts connections."""
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when
        # the listener says TCP, and without it every response waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        # SO_REUSEADDR lets a restarted server take the port while old connections linger.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        server = Server(uvicorn.Config(self.app, **self._config))
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"atoma-server:{self.port}",
            daemon=True,
        )
        self.server, self._thread = server, thread
        thread.start()
        if not server.wait_started(timeout):
            self.stop(timeout=1)
            raise RuntimeError(f"server on {self.url} did not start within {timeout}s")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully; raise if the server thread is still alive after `timeout`."""
        if self.server is None or self._thread is None:
            return
        self.server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(1)
            raise RuntimeError(f"server on {self.url} did not stop within {timeout}s")
        self.server, self._thread = None, None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
