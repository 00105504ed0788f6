"""The SQL backend as a client's durable store: state is there after a restart, and writes
acknowledged before a SIGKILL of the writing process are there after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from atoma_backend_sql import SqlBackend

from atoma_actors import create_client

_WRITER = textwrap.dedent("""
    import sys
    from atoma_actors import create_client
    from atoma_backend_sql import SqlBackend

    backend = SqlBackend(sys.argv[1])
    client = create_client(backend=backend.backend)
    users = client.store("users")
    i = 0
    while True:  # until killed
        saved = users.create({"id": f"u{i}", "n": i})
        print(saved["id"], flush=True)  # printed only once the write is acknowledged
        i += 1
""")


def test_client_reloads_state_after_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    backend = SqlBackend(url)
    client = create_client(backend=backend.backend)
    users = client.store("users")
    users.create({"id": "a", "name": "Ada"})
    users.create({"id": "b", "name": "Bo"})
    users.delete("b")
    client.close()
    backend.close()

    backend = SqlBackend(url)
    client = create_client(backend=backend.backend)
    try:
        users = client.store("users")
        assert users.get("a") == {"id": "a", "name": "Ada", "version": 1}
        assert [e["id"] for e in users.query({}).data] == ["a"]
        assert users.create({"id": "b", "name": "Bea"})["version"] == 3
    finally:
        client.close()
        backend.close()


def test_acknowledged_writes_survive_sigkill(tmp_path):
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        while len(acked) < 40:
            line = proc.stdout.readline()
            assert line, "the writer died before acknowledging 40 writes"
            acked.append(line.strip())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    with SqlBackend(url) as backend:
        client = create_client(backend=backend.backend)
        try:
            stored = {e["id"] for e in client.store("users").query({}).data}
        finally:
            client.close()
    assert set(acked) <= stored
