"""Malformed input fuzz: random bytes, wrong shapes, huge numbers, deep nesting, bad UTF-8.

Every answer must be a 4xx envelope (or a 200 whose bad ops failed alone), never a 500; the
server stays alive and the data it held is unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import msgpack
import pytest
from atoma_server import Limits, create_app
from atoma_server.testing import ServerThread
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_wire import create, create_entry, query, request, update_entry, write

from atoma_actors.core.storage import MemoryStorage
from atoma_actors.protocol.codecs import decode

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Target:
    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self.app = create_app(self.storage, limits=Limits(max_body_bytes=64 * 1024))
        self.server = ServerThread(self.app).start()
        self.client = httpx.Client(base_url=self.server.url, timeout=10)
        seed = request(create("s", "seed", "s1", {"name": "kept", "n": 1}))
        assert self.client.post("/ops", json=seed).status_code == 200
        self.seed = self.storage.snapshot("seed")

    def send(self, content: bytes, ctype: str) -> httpx.Response:
        before = self.storage.cursor
        response = self.client.post("/ops", content=content, headers={"content-type": ctype})
        assert response.status_code != 500, response.content[:300]
        assert response.status_code in (200, 400, 413, 422), response.status_code
        body = decode(response.content, response.headers["content-type"])
        if response.status_code != 200:
            assert body["ok"] is False and body["error"]["kind"] in ("validation", "limits")
            assert self.storage.cursor == before  # a rejected request wrote nothing
        return response

    def assert_intact(self) -> None:
        assert self.storage.snapshot("seed") == self.seed
        ok = self.client.post("/ops", json=request(query("q", "seed")))
        assert ok.status_code == 200 and ok.json()["data"]["results"][0]["data"]["data"]


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.assert_intact()
    t.client.close()
    t.server.stop()


CTYPES = st.sampled_from(["application/json", "application/msgpack", "text/plain", ""])
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.text(max_size=20),
    # Lone surrogates: JSON escapes them ("\\ud800"), valid syntax but not Unicode text.
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2),
)
# What msgpack carries beyond JSON: bin and ext values.
wire_leaf = st.one_of(
    st.binary(max_size=8), st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4))
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(content=st.binary(max_size=300), ctype=CTYPES)
def test_random_bytes(target, content, ctype):
    target.send(content, ctype)


@FUZZ
@given(value=json_value, fmt=st.sampled_from(["json", "msgpack"]))
def test_random_shapes(target, value, fmt):
    if fmt == "json":
        target.send(json.dumps(value).encode(), "application/json")
    else:
        try:
            packed = msgpack.packb(value)
        except (OverflowError, UnicodeEncodeError):  # no client can send it as msgpack
            return
        target.send(packed, "application/msgpack")


# Valid requests with one field swapped for garbage: the server's deepest parsing paths.
# The write goes to a scratch resource, so a swap that leaves it valid cannot touch the seed.
TEMPLATE = request(
    write("w", "scratch", [update_entry("s1", 1, {"name": "changed"}), create_entry("s2", {})]),
    query(
        "q",
        "seed",
        {
            "filter": {"op": "eq", "field": "name", "value": "kept"},
            "page": {"mode": "cursor", "limit": 1, "after": "abc"},
        },
    ),
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(TEMPLATE) if p]


def _replace(node, path, value):
    import copy

    out = copy.deepcopy(node)
    cur = out
    for key in path[:-1]:
        cur = cur[key]
    cur[path[-1]] = value
    return out


@FUZZ
@given(path=st.sampled_from(PATHS), value=json_value)
def test_one_field_swapped(target, path, value):
    body = _replace(TEMPLATE, path, value)
    try:
        content = json.dumps(body).encode()
    except (TypeError, ValueError):
        return
    target.send(content, "application/json")


def _deep(levels: int, open_: bytes, close: bytes) -> bytes:
    return open_ * levels + close * levels


@pytest.mark.parametrize(
    "content",
    [
        _deep(10_000, b"[", b"]"),
        _deep(10_000, b'{"a":', b"}").replace(b"}", b"1}", 1),
        b'{"meta":{},"ops":[{"opId":"w","kind":"write","write":{"resource":"seed","entries":[{'
        b'"action":"create","item":{"id":"d","meta":{"idempotencyKey":"k","clientTimeMs":1},'
        b'"value":' + _deep(10_000, b'{"a":', b"}").replace(b"}", b"1}", 1) + b"}}]}}]}",
        b'{"meta":{},"ops":[{"opId":"q","kind":"query","query":{"resource":"seed","query":'
        b'{"filter":'
        + _deep(500, b'{"op":"not","arg":', b"}").replace(b"}", b'{"op":"exists","field":"a"}}', 1)
        + b"}}}]}",
        b'{"meta":{"clientTimeMs":' + b"9" * 5000 + b'},"ops":[]}',
        b'{"meta":{},"ops":[{"opId":"p","kind":"changes.pull","pull":{"limit":1e400}}]}',
        b'{"meta":{},"ops":[{"opId":"p","kind":"changes.pull","pull":{"cursor":"\xff\xfe"}}]}',
        b'{"meta":{},"ops":[{"opId":"\xc3\x28","kind":"query","query":{"resource":"seed"}}]}',
    ],
)
def test_hostile_inputs(target, content):
    target.send(content, "application/json")


def test_deep_msgpack(target):
    target.send(b"\x91" * 10_000 + b"\x01", "application/msgpack")  # [[[...1...]]]
    target.send(
        msgpack.packb(
            {
                "meta": {},
                "ops": [
                    {
                        "opId": "q",
                        "kind": "query",
                        "query": {
                            "resource": "seed",
                            "query": {"filter": {"op": "eq", "field": "n", "value": 2**64 - 1}},
                        },
                    }
                ],
            }
        ),
        "application/msgpack",
    )


@FUZZ
@given(path=st.sampled_from(PATHS), value=st.one_of(wire_leaf, json_value))
def test_one_field_swapped_msgpack(target, path, value):
    """bin and ext values anywhere in a msgpack body: refused, never stored or echoed."""
    try:
        content = msgpack.packb(_replace(TEMPLATE, path, value), use_bin_type=True)
    except (OverflowError, UnicodeEncodeError):
        return
    target.send(content, "application/msgpack")
