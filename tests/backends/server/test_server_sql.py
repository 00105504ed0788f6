"""The server over its production storage, `SqlBackend` on a SQLite file: round trips in
both codecs, one bad op alone, tenant scoping, notify from the storage, hostile input, and the
console script keeping data across a restart."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import httpx
import pytest
from server_wire import (
    SseReader,
    create,
    create_entry,
    post,
    pull,
    query,
    request,
    update_entry,
    write,
)

atoma_backend_sql = pytest.importorskip("atoma_backend_sql")


@pytest.fixture
def sql(tmp_path) -> Iterator[object]:
    backend = atoma_backend_sql.SqlBackend(f"sqlite:///{tmp_path / 'ops.db'}", synchronous="NORMAL")
    yield backend
    backend.close()


def rows(http, url, resource, headers=None):
    _, body = post(http, url, request(query("q", resource)), headers=headers)
    return {r["id"]: r for r in body["data"]["results"][0]["data"]["data"]}


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_round_trip_over_sqlite(serve, sql, http, fmt):
    url = serve(sql).url
    status, body = post(
        http,
        url,
        request(
            create("c1", "users", "u1", {"name": "Ada", "age": 36}),
            write(
                "c2",
                "users",
                [
                    create_entry("u2", {"name": "Bob", "age": 41}),
                    create_entry("u1", {"name": "dup"}),
                ],
            ),
            query("bad", "users", {"filter": {"op": "nope"}}),
        ),
        fmt,
    )
    assert status == 200
    c1, c2, bad = body["data"]["results"]
    assert c1["data"]["results"][0]["version"] == 1
    assert [i["ok"] for i in c2["data"]["results"]] == [True, False]
    assert c2["data"]["results"][1]["error"]["kind"] == "conflict"
    assert bad["ok"] is False and bad["error"]["kind"] == "validation"

    op = write("u", "users", [update_entry("u1", 1, {"age": 37}, key="once")])
    first = post(http, url, request(op), fmt)[1]
    again = post(http, url, request(op), fmt)[1]
    assert first["data"]["results"] == again["data"]["results"]
    _, body = post(
        http,
        url,
        request(query("q", "users", {"sort": [{"field": "age", "dir": "desc"}]}), pull("p")),
        fmt,
    )
    found, changes = body["data"]["results"]
    assert [(r["id"], r["version"], r["age"]) for r in found["data"]["data"]] == [
        ("u2", 1, 41),
        ("u1", 2, 37),
    ]
    assert {(c["id"], c["version"]) for c in changes["data"]["changes"]} == {("u1", 2), ("u2", 1)}


def test_tenants_and_notify_over_sqlite(serve, sql, http):
    from atoma_server import Scope

    def auth(req):
        tenant = req.headers.get("x-tenant")
        # SqlBackend resource names allow letters, digits, '_', '.' and '-': prefix with '.'
        return Scope(resource_prefix=f"{tenant}.") if tenant else None

    url = serve(sql, auth=auth).url
    with SseReader(url, {"x-tenant": "t1"}) as sse:
        sse.next("ready")
        post(
            http, url, request(create("w", "notes", "n1", {"by": "t2"})), headers={"x-tenant": "t2"}
        )
        post(
            http, url, request(create("w", "notes", "n1", {"by": "t1"})), headers={"x-tenant": "t1"}
        )
        notify = sse.next("notify")
        assert notify.data == '{"resources":["notes"]}'
    assert rows(http, url, "notes", {"x-tenant": "t1"})["n1"]["by"] == "t1"
    assert rows(http, url, "notes", {"x-tenant": "t2"})["n1"]["by"] == "t2"
    _, body = post(http, url, request(pull("p")), headers={"x-tenant": "t1"})
    assert [c["id"] for c in body["data"]["results"][0]["data"]["changes"]] == ["n1"]
    assert rows(http, url, "t1.notes") == rows(http, url, "notes", {"x-tenant": "t1"})


@pytest.mark.parametrize(
    "content",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"meta":{},"ops":[{"opId":"w","kind":"write","write":{"resource":"users","entries":[{'
        b'"action":"create","item":{"id":"x","meta":{"idempotencyKey":"k","clientTimeMs":'
        + b"9" * 30
        + b'},"value":{}}}]}}]}',
        b'{"meta":{},"ops":[{"opId":"w","kind":"write","write":{"resource":"users","entries":[{'
        b'"action":"update","item":{"id":"u1","baseVersion":99999999999999999999,'
        b'"meta":{"idempotencyKey":"k","clientTimeMs":1},"value":{}}}]}}]}',
        b'{"meta":{},"ops":[{"opId":"p","kind":"changes.pull","pull":{"cursor":"not-a-cursor"}}]}',
        b'{"meta":{},"ops":[{"opId":"q","kind":"query","query":{"resource":"users","query":'
        b'{"page":{"mode":"cursor","after":"!!!"}}}}]}',
    ],
)
def test_hostile_input_over_sqlite(serve, sql, http, content):
    url = serve(sql).url
    post(http, url, request(create("w", "users", "u1", {"n": 1})))
    response = http.post(
        url + "/ops", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code in (200, 400, 422)
    body = response.json()
    if response.status_code == 200:
        assert all(
            r["ok"] is False or r["data"].get("results", [{}])[0].get("ok") is False
            for r in body["data"]["results"]
        )
    assert rows(http, url, "users") == {"u1": {"n": 1, "id": "u1", "version": 1}}


def test_console_script_keeps_data_across_restarts(tmp_path):
    from test_server_cli import SCRIPT, Running

    if not SCRIPT.exists():
        pytest.skip("atoma-server is not installed in this venv")
    db = f"sqlite:///{tmp_path / 'served.db'}"
    for round_ in range(2):
        server = Running("--db", db, "--log-level", "info")
        try:
            assert server.ready.wait(20), "".join(server.log)
            with httpx.Client(timeout=5) as client:
                status, _ = post(
                    client, server.url, request(create("w", "users", f"r{round_}", {}))
                )
                assert status == 200
                assert sorted(rows(client, server.url, "users")) == [
                    f"r{i}" for i in range(round_ + 1)
                ]
            server.proc.send_signal(signal.SIGTERM)
            assert server.proc.wait(10) in (0, -signal.SIGTERM)
        finally:
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait(5)
