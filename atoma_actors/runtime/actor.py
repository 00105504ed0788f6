"""`Actor`: the base of every actor in the runtime — a pykka `ThreadingActor` whose inbox is
a `queue.SimpleQueue`.

pykka's default inbox is a `queue.Queue`, whose `put` and `get` run Python-level condition
code under a lock the sender and the receiver both take: about 3.6 µs of CPU per message on
this project's machines, and a convoy when the receiver holds that lock while it waits for the
GIL. `SimpleQueue` does the same in C (0.6 µs), and it is all an actor inbox needs (`put`,
`get`, `empty`), through pykka's own extension point (`_create_actor_inbox`).
Must not import client or any backend.
"""

from __future__ import annotations

import queue
from typing import Any

import pykka

__all__ = ["Actor"]


class Actor(pykka.ThreadingActor):
    """A pykka threading actor with a C-level inbox."""

    @staticmethod
    def _create_actor_inbox() -> Any:
        return queue.SimpleQueue()
