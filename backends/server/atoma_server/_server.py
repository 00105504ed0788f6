"""`Server`: a uvicorn server that ends the notify streams before it drains connections.

uvicorn waits for open responses before it stops; an SSE stream never ends by itself, so a
plain uvicorn server would hang until its graceful-shutdown timeout. Imports uvicorn and this
package only.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import uvicorn

from ._notify import NotifyHub

__all__ = ["Server"]


class Server(uvicorn.Server):
    """`uvicorn.Server` plus `ready`/`stopped` events and a notify shutdown on exit."""

    def __init__(self, config: uvicorn.Config, hub: NotifyHub | None = None) -> None:
        super().__init__(config)
        if hub is None:
            state = getattr(config.app, "state", None)
            hub = getattr(state, "atoma_hub", None)
        self.hub = hub
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self._settled = threading.Event()  # set on ready or on a failed start, whichever first

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().serve(sockets=sockets)
        finally:
            self.stopped.set()
            self._settled.set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.ready.set()
        self._settled.set()

    def wait_started(self, timeout: float | None = None) -> bool:
        """Block until the server accepts connections (True) or failed to start (False)."""
        self._settled.wait(timeout)
        return self.ready.is_set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.hub is not None:
            self.hub.shutdown()
        await super().shutdown(sockets=sockets)

    def stop(self, **_: Any) -> None:
        """Ask the server to stop (safe from any thread); `stopped` is set once it has."""
        self.should_exit = True
