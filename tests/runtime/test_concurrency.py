"""Many threads, overlapping ids, a faulty backend: nothing acknowledged is lost, nothing failed
is visible, and the client ends up with exactly what the server holds."""

from __future__ import annotations

import random
import threading

import pykka
from atoma_backend_memory import MemoryBackend

from atoma_actors import AtomaError, create_client
from atoma_actors.runtime.supervisor import SupervisorPolicy

THREADS = 8
WRITES = 500
IDS = [f"k{i}" for i in range(40)]


def worker(store, seed, acked, failed, errors):
    rng = random.Random(seed)
    for n in range(WRITES):
        id_ = rng.choice(IDS)
        action = rng.choice(["create", "update", "update", "upsert", "delete"])
        tag = f"t{seed}-{n}"
        try:
            if action == "create":
                out = store.create({"id": id_, "tag": tag})
            elif action == "update":
                out = store.update(id_, {"tag": tag})
            elif action == "upsert":
                out = store.upsert({"id": id_, "tag": tag}, conflict="lww")
            else:
                store.delete(id_)
                out = None
            acked.append((id_, action, tag, out))
        except AtomaError as exc:
            failed.append((id_, action, tag, exc))
        except Exception as exc:  # anything untyped is a bug
            errors.append(exc)


def test_eight_threads_mixed_writes_against_faulty_backend():
    backend = MemoryBackend(seed=11)
    backend.faults.configure(error_rate=0.1, crash_rate=0.01)
    policy = SupervisorPolicy(
        backoff_base=0.001, backoff_max=0.005, max_failures=10_000, window=1.0, circuit_reset=0.005
    )
    acked, failed, errors = [], [], []
    with create_client(backend.backend, supervisor=policy, timeout=20) as c:
        store = c.store("items")
        threads = [
            threading.Thread(target=worker, args=(store, s, acked, failed, errors))
            for s in range(THREADS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        assert len(acked) + len(failed) == THREADS * WRITES
        assert len(acked) > THREADS * WRITES // 10 and failed
        backend.heal()
        c.settle(10)
        server = backend.snapshot("items")
        local = {e["id"]: e for e in store.query_local().data}
        assert local == server
        # every acknowledged write is there, unless a later acknowledged write replaced it
        deleted = {id_ for id_, action, _, _ in acked if action == "delete"}
        for id_, _, tag, out in acked:
            if out is None:
                continue
            if id_ not in server:
                assert id_ in deleted
                continue
            assert server[id_]["version"] >= out["version"]
            if server[id_]["version"] == out["version"]:
                assert server[id_]["tag"] == tag
        # no failed write is visible: each failed tag is absent from the final state
        final_tags = {e.get("tag") for e in server.values()}
        acked_tags = {tag for _, _, tag, _ in acked}
        assert not (final_tags - acked_tags - {None})
        assert not ({tag for _, _, tag, _ in failed} & final_tags)
    assert pykka.ActorRegistry.get_all() == []
