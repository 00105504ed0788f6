"""`atoma-server`: the console script serving an SQL database over the ops protocol.

`atoma-server --db sqlite:///data.db --host 127.0.0.1 --port 8000`. SIGINT/SIGTERM stop it
gracefully: notify streams end, in-flight requests finish, then the storage is closed.
The storage engines are imported lazily so the app itself needs neither.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

import uvicorn

from ._app import create_app
from ._limits import Limits
from ._server import Server

__all__ = ["main", "open_storage"]

_DEFAULTS = Limits()


def open_storage(db: str) -> Any:
    """The storage behind `--db`: `memory` for the in-memory engine, else an SQLAlchemy URL."""
    if db == "memory":
        from atoma_actors.core.storage import MemoryStorage  # type: ignore[import-not-found]

        return MemoryStorage()
    try:
        from atoma_backend_sql import SqlBackend  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - depends on what is installed
        raise SystemExit("atoma-server --db URL needs atoma-backend-sql installed") from exc
    return SqlBackend(db)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="atoma-server", description=__doc__.splitlines()[0])
    p.add_argument(
        "--db",
        default="sqlite:///atoma.db",
        help="SQLAlchemy URL, or 'memory' (default: sqlite:///atoma.db)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level", default="info")
    p.add_argument("--max-body-bytes", type=int, default=_DEFAULTS.max_body_bytes)
    p.add_argument("--max-ops", type=int, default=_DEFAULTS.max_ops)
    p.add_argument("--heartbeat", type=float, default=15.0, help="SSE heartbeat seconds")
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=10.0,
        help="seconds to let in-flight requests finish on shutdown",
    )
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    storage = open_storage(args.db)
    try:
        app = create_app(
            storage,
            limits=Limits(max_body_bytes=args.max_body_bytes, max_ops=args.max_ops),
            heartbeat=args.heartbeat,
        )
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            lifespan="off",
            timeout_graceful_shutdown=int(args.shutdown_timeout),
        )
        Server(config).run()  # uvicorn turns SIGINT/SIGTERM into a graceful stop
    finally:
        close = getattr(storage, "close", None)
        if callable(close):
            close()


if __name__ == "__main__":  # pragma: no cover
    main()
