"""POST /ops end to end over a real loopback server: envelopes, both codecs, per-op errors,
statuses for bad paths, methods and bodies."""

from __future__ import annotations

import msgpack
import pytest
from server_wire import create, create_entry, post, pull, query, request, update_entry, write


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_create_update_query_pull_round_trip(serve, storage, http, fmt):
    url = serve(storage).url
    status, body = post(
        http,
        url,
        request(
            create("w1", "users", "u1", {"name": "Ada", "age": 36}),
            create("w2", "users", "u2", {"name": "Bob", "age": 41}),
            traceId="t-1",
        ),
        fmt,
    )
    assert status == 200 and body["ok"] is True
    assert [r["opId"] for r in body["data"]["results"]] == ["w1", "w2"]
    first = body["data"]["results"][0]["data"]["results"][0]
    assert first == {
        "ok": True,
        "id": "u1",
        "version": 1,
        "data": {"name": "Ada", "age": 36, "id": "u1", "version": 1},
    }
    assert isinstance(body["meta"]["serverTimeMs"], int)

    status, body = post(
        http,
        url,
        request(
            write("w3", "users", [update_entry("u1", 1, {"age": 37})]),
            query(
                "q1",
                "users",
                {
                    "filter": {"op": "gte", "field": "age", "value": 37},
                    "sort": [{"field": "age", "dir": "desc"}],
                },
            ),
            pull("p1"),
        ),
        fmt,
    )
    assert status == 200
    w3, q1, p1 = body["data"]["results"]
    assert w3["data"]["results"][0]["version"] == 2
    assert [row["id"] for row in q1["data"]["data"]] == ["u2", "u1"]
    assert q1["data"]["data"][1]["age"] == 37
    assert {(c["id"], c["version"]) for c in p1["data"]["changes"]} == {("u1", 2), ("u2", 1)}
    assert storage.get("users", "u1")["age"] == 37


def test_response_format_follows_accept_then_content_type(serve, storage, http):
    url = serve(storage).url
    body = request(query("q", "users"))
    as_json = http.post(url + "/ops", json=body, headers={"accept": "application/msgpack"})
    assert as_json.headers["content-type"] == "application/msgpack"
    assert msgpack.unpackb(as_json.content)["ok"] is True
    packed = msgpack.packb(body)
    plain = http.post(
        url + "/ops",
        content=packed,
        headers={"content-type": "application/msgpack", "accept": "*/*"},
    )
    assert plain.headers["content-type"] == "application/msgpack"
    back = http.post(
        url + "/ops",
        content=packed,
        headers={"content-type": "application/x-msgpack", "accept": "application/json"},
    )
    assert back.headers["content-type"].startswith("application/json")
    assert back.json()["ok"] is True


def test_one_bad_op_fails_alone(serve, storage, http):
    url = serve(storage, resources={"users"}).url
    status, body = post(
        http,
        url,
        request(
            create("good", "users", "u1", {"n": 1}),
            query("badq", "users", {"filter": {"op": "nope", "field": "x"}}),
            query("unknown", "ghosts"),
            write("dup", "users", [create_entry("u1", {"n": 2})]),
        ),
    )
    assert status == 200
    good, badq, unknown, dup = body["data"]["results"]
    assert good["ok"] is True and good["data"]["results"][0]["version"] == 1
    assert badq["ok"] is False and badq["error"]["kind"] == "validation"
    assert unknown["ok"] is False and unknown["error"]["kind"] == "not_found"
    assert unknown["error"]["details"]["resource"] == "ghosts"
    item = dup["data"]["results"][0]
    assert item["ok"] is False and item["error"]["kind"] == "conflict"
    assert storage.get("users", "u1")["n"] == 1


def test_repeated_idempotency_key_writes_once(serve, storage, http):
    url = serve(storage).url
    op = write("w", "users", [create_entry("u1", {"n": 1}, key="same-key")])
    first = post(http, url, request(op))[1]
    again = post(http, url, request(op))[1]
    assert first["data"]["results"] == again["data"]["results"]
    assert again["data"]["results"][0]["data"]["results"][0]["ok"] is True
    assert storage.version("users", "u1") == 1


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/ops", 405, "METHOD_NOT_ALLOWED"),
        ("PUT", "/ops", 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/ops/notify", 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/nope", 404, "UNKNOWN_PATH"),
        ("GET", "/", 404, "UNKNOWN_PATH"),
    ],
)
def test_wrong_path_or_method_gets_an_envelope(serve, storage, http, method, path, status, code):
    url = serve(storage).url
    response = http.request(method, url + path)
    assert response.status_code == status
    body = response.json()
    assert body["ok"] is False and body["error"]["code"] == code
    if status == 405:
        assert "POST" in response.headers["allow"] or "GET" in response.headers["allow"]


@pytest.mark.parametrize(
    ("content", "ctype", "status", "code"),
    [
        (b"{not json", "application/json", 400, "INVALID_BODY"),
        (b"\xff\xfe\x00", "application/json", 400, "INVALID_BODY"),
        (b"\xc1", "application/msgpack", 400, "INVALID_BODY"),
        (b"[]", "application/json", 422, "INVALID_REQUEST"),
        (b'{"meta": {"v": 2}, "ops": []}', "application/json", 422, "INVALID_REQUEST"),
        (
            b'{"meta": {}, "ops": [{"opId": "a", "kind": "query", "query": {"resource": ""}}]}',
            "application/json",
            422,
            "INVALID_REQUEST",
        ),
        (
            b'{"meta": {}, "ops": [{"opId": "a", "kind": "query", "query": {"resource": "r"}},'
            b'{"opId": "a", "kind": "query", "query": {"resource": "r"}}]}',
            "application/json",
            422,
            "INVALID_REQUEST",
        ),
    ],
)
def test_malformed_bytes_are_400_wrong_shapes_are_422(
    serve, storage, http, content, ctype, status, code
):
    url = serve(storage).url
    response = http.post(url + "/ops", content=content, headers={"content-type": ctype})
    assert response.status_code == status
    body = msgpack.unpackb(response.content) if "msgpack" in ctype else response.json()
    assert body["ok"] is False
    assert body["error"]["kind"] == "validation" and body["error"]["code"] == code
    assert storage.resources() == []


def test_missing_item_meta_is_422(serve, storage, http):
    url = serve(storage).url
    entry = {"action": "create", "item": {"id": "u1", "value": {}}}
    status, body = post(http, url, request(write("w", "users", [entry])))
    assert status == 422 and "meta" in body["error"]["message"]
    assert storage.get("users", "u1") is None


def test_storage_crash_is_a_500_envelope_and_the_server_lives_on(serve, storage, http):
    class Flaky:
        def __init__(self) -> None:
            self.fail = True

        def execute_ops(self, ops, meta, *, deadline=None, context=None):
            if self.fail:
                self.fail = False
                raise RuntimeError("disk on fire")
            return storage.execute_ops(ops, meta, deadline=deadline, context=context)

    url = serve(Flaky()).url
    status, body = post(http, url, request(query("q", "users")))
    assert status == 500 and body["error"]["kind"] == "internal"
    assert "disk" not in body["error"]["message"]  # internals stay on the server
    status, body = post(http, url, request(query("q", "users")))
    assert status == 200 and body["ok"] is True


def test_storage_unavailable_is_a_retryable_503(serve, http):
    from atoma_actors.protocol.errors import BackendUnavailable

    class Down:
        def execute_ops(self, ops, meta, *, deadline=None, context=None):
            raise BackendUnavailable("database is restarting")

    url = serve(Down()).url
    status, body = post(http, url, request(query("q", "users")))
    assert status == 503
    assert body["error"]["retryable"] is True and body["error"]["kind"] == "adapter"


def test_storage_receives_deadline_and_scope_context(serve, storage, http):
    seen = {}

    class Spy:
        def execute_ops(self, ops, meta, *, deadline=None, context=None):
            seen.update(deadline=deadline, context=context, meta=meta)
            return storage.execute_ops(ops, meta)

    url = serve(Spy(), op_timeout=5.0).url
    post(http, url, request(query("q", "users"), traceId="tr", deviceId="d1"))
    assert seen["deadline"] is not None
    assert seen["meta"].trace_id == "tr" and seen["meta"].device_id == "d1"
    assert seen["context"] == {"principal": None}
