"""Each request limit: request-shaped limits reject the request (413/422), op-shaped limits
fail only their op; nothing over a limit reaches the storage."""

from __future__ import annotations

import socket

import msgpack
import pytest
from atoma_server import Limits
from server_wire import create, create_entry, post, pull, query, request, write

from atoma_actors.protocol.codecs import encode


def test_body_over_the_limit_is_413_whether_announced_or_streamed(serve, storage, http):
    url = serve(storage, limits=Limits(max_body_bytes=2000)).url
    big = request(create("w", "users", "u1", {"blob": "x" * 5000}))
    status, body = post(http, url, big)
    assert status == 413
    assert body["error"]["kind"] == "limits" and body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert body["error"]["details"]["max"] == 2000

    # A chunked body announces no length: the server must count while it reads.
    def chunks():
        data = encode(big)
        for i in range(0, len(data), 500):
            yield data[i : i + 500]

    response = http.post(
        url + "/ops", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert storage.get("users", "u1") is None

    status, _ = post(http, url, request(create("w", "users", "u1", {"blob": "x" * 100})))
    assert status == 200 and storage.get("users", "u1") is not None


def test_a_huge_announced_body_is_refused_before_it_is_sent(serve, storage):
    server = serve(storage, limits=Limits(max_body_bytes=1000))
    head = (
        b"POST /ops HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b'{"meta":')  # a few bytes, then nothing: no one sends 1 GB
        reply = sock.recv(65536)
        head_part, _, body_part = reply.partition(b"\r\n\r\n")
        length = int(head_part.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(body_part) < length:
            body_part += sock.recv(65536)
    reply = head_part + b"\r\n\r\n" + body_part
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"PAYLOAD_TOO_LARGE" in reply


def test_too_many_ops_and_queries_reject_the_request(serve, storage, http):
    url = serve(storage, limits=Limits(max_ops=3, max_queries=2)).url
    status, body = post(
        http, url, request(*[create(f"w{i}", "users", f"u{i}", {}) for i in range(4)])
    )
    assert status == 422 and body["error"]["kind"] == "limits"
    assert body["error"]["details"] == {"limit": "maxOps", "max": 3, "actual": 4}
    assert storage.resources() == []

    status, body = post(http, url, request(*[query(f"q{i}", "users") for i in range(3)]))
    assert status == 422 and body["error"]["details"]["limit"] == "maxQueries"

    status, body = post(
        http,
        url,
        request(query("q1", "users"), query("q2", "users"), create("w", "users", "u1", {})),
    )
    assert status == 200 and storage.get("users", "u1") is not None


def test_page_limit_fails_only_that_op(serve, storage, http):
    url = serve(storage, limits=Limits(max_page_limit=50)).url
    status, body = post(
        http,
        url,
        request(
            query("big", "users", {"page": {"mode": "offset", "limit": 51}}),
            query("ok", "users", {"page": {"mode": "offset", "limit": 50}}),
            pull("bigpull", limit=51),
            create("w", "users", "u1", {}),
        ),
    )
    assert status == 200
    big, ok, bigpull, w = body["data"]["results"]
    assert big["ok"] is False and big["error"]["kind"] == "limits"
    assert big["error"]["details"]["limit"] == "maxPageLimit"
    assert bigpull["ok"] is False and bigpull["error"]["details"]["limit"] == "maxPageLimit"
    assert ok["ok"] is True and w["ok"] is True


def test_write_entries_and_item_bytes_fail_only_their_op(serve, storage, http):
    url = serve(storage, limits=Limits(max_write_entries=3, max_item_bytes=100)).url
    status, body = post(
        http,
        url,
        request(
            write("many", "users", [create_entry(f"m{i}", {}) for i in range(4)]),
            write("fat", "users", [create_entry("f1", {}), create_entry("f2", {"s": "z" * 200})]),
            write("fine", "users", [create_entry(f"ok{i}", {"s": "z" * 50}) for i in range(3)]),
        ),
    )
    assert status == 200
    many, fat, fine = body["data"]["results"]
    assert many["error"]["details"]["limit"] == "maxWriteEntries"
    assert fat["error"]["details"] == {
        "limit": "maxItemBytes",
        "max": 100,
        "actual": fat["error"]["details"]["actual"],
        "opId": "fat",
        "index": 1,
    }
    assert fine["ok"] is True
    assert sorted(storage.snapshot("users")) == ["ok0", "ok1", "ok2"]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ({"n": 2**64}, "NUMBER_OUT_OF_RANGE"),
        ({"n": -(2**63) - 1}, "NUMBER_OUT_OF_RANGE"),
        ({"deep": "nest"}, "TOO_DEEP"),
    ],
)
def test_values_a_codec_cannot_carry_are_validation_errors(serve, storage, http, value, code):
    if code == "TOO_DEEP":
        for _ in range(20):
            value = {"d": value}
    url = serve(storage, limits=Limits(max_depth=10)).url
    status, body = post(
        http,
        url,
        request(create("w", "users", "u1", value), create("w2", "users", "u2", {"n": 2**63})),
    )
    assert status == 200
    bad, good = body["data"]["results"]
    assert bad["ok"] is False and bad["error"]["code"] == code
    assert good["ok"] is True
    assert storage.get("users", "u1") is None


def test_non_finite_numbers_from_json_are_refused(serve, storage, http):
    url = serve(storage).url
    raw = (
        b'{"meta": {}, "ops": [{"opId": "w", "kind": "write", "write": {"resource": "u",'
        b' "entries": [{"action": "create", "item": {"id": "a", "value": {"x": 1e999},'
        b' "meta": {"idempotencyKey": "k", "clientTimeMs": 1}}}]}}]}'
    )
    response = http.post(url + "/ops", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json()["data"]["results"][0]["error"]["code"] == "NUMBER_OUT_OF_RANGE"
    assert storage.resources() == []


def test_huge_client_time_is_refused_before_storage(serve, storage, http):
    url = serve(storage).url
    status, body = post(http, url, request(query("q", "users"), clientTimeMs=2**70))
    assert status == 422 and body["error"]["code"] == "NUMBER_OUT_OF_RANGE"


def test_limits_can_be_switched_off(serve, storage, http):
    url = serve(storage, limits=Limits(max_ops=None, max_queries=None)).url
    status, body = post(http, url, request(*[query(f"q{i}", "users") for i in range(150)]))
    assert status == 200 and len(body["data"]["results"]) == 150


_SURROGATE_BODY = (
    b'{"meta":{"v":1},"ops":[{"opId":"w","kind":"write","write":{"resource":"t","entries":['
    b'{"action":"create","item":{"id":"a","value":{"s":"\\ud800"},'
    b'"meta":{"idempotencyKey":"k1","clientTimeMs":1}}}]}}]}'
)


@pytest.mark.parametrize("where", ["value", "id", "opId", "key"])
@pytest.mark.parametrize("storage_kind", ["memory", "sql"])
def test_lone_surrogate_escapes_are_400_and_write_nothing(serve, http, where, storage_kind):
    """`"\\ud800"` is valid JSON syntax but not Unicode text: no storage can hold it and no
    answer can carry it back."""
    from atoma_backend_sql import SqlBackend

    from atoma_actors.core.storage import MemoryStorage

    clean = _SURROGATE_BODY.replace(b"\\ud800", b"ok")
    body = {
        "value": _SURROGATE_BODY,
        "id": clean.replace(b'"id":"a"', b'"id":"a\\udfff"'),
        "opId": clean.replace(b'"opId":"w"', b'"opId":"\\uDBFF"'),
        "key": clean.replace(b'{"s":', b'{"\\ud800":'),
    }[where]
    store = MemoryStorage() if storage_kind == "memory" else SqlBackend("sqlite://")
    try:
        url = serve(store, limits=Limits(max_item_bytes=None)).url
        status, answer = post(http, url, body)
        assert status == 400, answer
        assert answer["error"]["code"] == "INVALID_BODY"
        status, answer = post(http, url, request(query("q", "t")))
        assert status == 200 and answer["data"]["results"][0]["data"]["data"] == []
        # A valid pair spelled as escapes is one character and passes.
        pair = _SURROGATE_BODY.replace(b"\\ud800", b"\\ud83d\\ude00")
        status, answer = post(http, url, pair)
        assert status == 200 and answer["data"]["results"][0]["ok"], answer
        status, answer = post(http, url, request(query("q", "t")))
        assert answer["data"]["results"][0]["data"]["data"][0]["s"] == "\U0001f600"
    finally:
        getattr(store, "close", lambda: None)()


@pytest.mark.parametrize(
    "value",
    [
        {"b": b"\xff\xfe"},
        {"nested": [1, {"e": msgpack.ExtType(5, b"x")}]},
        {"nested": {b"k": 1}},
    ],
)
@pytest.mark.parametrize("item_limit", [256 * 1024, None])
def test_msgpack_bin_and_ext_values_fail_their_op(serve, storage, http, value, item_limit):
    url = serve(storage, limits=Limits(max_item_bytes=item_limit)).url
    body = msgpack.packb(
        request(
            create("bad", "t", "a", value),
            query("q", "t", {"filter": {"op": "eq", "field": "b", "value": b"\x01"}}),
            create("good", "t", "b", {"n": 1}),
        ),
        use_bin_type=True,
    )
    status, answer = post(http, url, body, fmt="msgpack")
    assert status == 200, answer
    bad, q, good = answer["data"]["results"]
    assert (bad["ok"], bad["error"]["code"]) == (False, "INVALID_VALUE"), bad
    assert (q["ok"], q["error"]["code"]) == (False, "INVALID_VALUE"), q
    assert good["ok"] is True
    assert sorted(storage.snapshot("t")) == ["b"]


@pytest.mark.parametrize(
    ("q", "expect"),
    [
        ({}, 10),
        ({"page": None}, 10),
        ({"page": {"mode": "offset"}}, 10),
        ({"page": {"mode": "offset", "offset": 45, "limit": None}}, 5),
        ({"page": {"mode": "cursor"}}, 10),
        ({"sort": [{"field": "id", "dir": "asc"}], "page": {"mode": "offset", "limit": 3}}, 3),
    ],
)
def test_a_query_without_a_limit_gets_max_page_limit(serve, http, q, expect):
    """Leaving the limit out must not read past `max_page_limit`; `hasNext` says more exist."""
    from atoma_backend_sql import SqlBackend

    with SqlBackend("sqlite://") as sql:
        entries = [create_entry(f"e{i:02}", {}) for i in range(50)]
        assert post(http, serve(sql).url, request(write("w", "t", entries)))[0] == 200
        url = serve(sql, limits=Limits(max_page_limit=10)).url
        status, body = post(http, url, request(query("q", "t", q), pull("p")))
        assert status == 200
        res, pulled = body["data"]["results"]
        assert res["ok"], res
        assert len(res["data"]["data"]) == expect
        assert res["data"]["pageInfo"]["hasNext"] is (expect != 5)
        assert len(pulled["data"]["changes"]) == 10
