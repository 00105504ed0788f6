"""Wire models and codecs: upstream-shaped camelCase JSON round-trips, msgpack, typed errors."""

from __future__ import annotations

import json

import msgpack
import pytest

from atoma_actors.protocol import (
    JSON,
    MSGPACK,
    AdapterError,
    BackendUnavailable,
    ConflictError,
    CurrentValue,
    NotFoundError,
    OperationResult,
    OpsRequest,
    OpsResponse,
    OpsResponseError,
    OpsResponseOk,
    StandardError,
    ValidationError,
    WriteOp,
    decode_as,
    encode,
    error_from_standard,
    media_type,
)

UPSTREAM_REQUEST = {
    "meta": {"v": 1, "traceId": "t1", "requestId": "r1", "clientTimeMs": 1700000000000},
    "ops": [
        {
            "opId": "q1",
            "kind": "query",
            "query": {
                "resource": "users",
                "query": {
                    "filter": {"op": "eq", "field": "name", "value": "Ada"},
                    "page": {"mode": "offset", "limit": 10, "includeTotal": True},
                },
            },
        },
        {
            "opId": "w1",
            "kind": "write",
            "write": {
                "resource": "users",
                "entries": [
                    {
                        "action": "create",
                        "item": {
                            "id": "u1",
                            "value": {"name": "Ada"},
                            "meta": {"idempotencyKey": "k1", "clientTimeMs": 1},
                        },
                    },
                    {
                        "action": "update",
                        "item": {
                            "id": "u2",
                            "baseVersion": 3,
                            "value": {"a": 1},
                            "meta": {"idempotencyKey": "k2", "clientTimeMs": 1},
                        },
                    },
                    {
                        "action": "upsert",
                        "item": {
                            "id": "u3",
                            "expectedVersion": 1,
                            "value": {},
                            "meta": {"idempotencyKey": "k3", "clientTimeMs": 1},
                        },
                        "options": {"upsert": {"conflict": "lww", "apply": "replace"}},
                    },
                    {
                        "action": "delete",
                        "item": {
                            "id": "u4",
                            "baseVersion": 2,
                            "meta": {"idempotencyKey": "k4", "clientTimeMs": 1},
                        },
                    },
                ],
            },
        },
        {"opId": "c1", "kind": "changes.pull", "pull": {"cursor": "5", "limit": 100}},
    ],
}

UPSTREAM_RESPONSE = {
    "ok": True,
    "data": {
        "results": [
            {
                "opId": "q1",
                "ok": True,
                "data": {
                    "data": [{"id": "u1", "version": 1}],
                    "pageInfo": {"hasNext": False, "total": 1},
                },
            },
            {
                "opId": "w1",
                "ok": True,
                "data": {
                    "transactionApplied": True,
                    "results": [
                        {"ok": True, "id": "u1", "version": 1, "data": {"id": "u1", "version": 1}},
                        {
                            "ok": False,
                            "error": {
                                "code": "CONFLICT",
                                "message": "stale",
                                "kind": "conflict",
                                "details": {
                                    "resource": "users",
                                    "id": "u2",
                                    "currentVersion": 4,
                                    "hint": "rebase",
                                },
                            },
                            "current": {"value": {"id": "u2"}, "version": 4},
                        },
                    ],
                },
            },
            {
                "opId": "c1",
                "ok": False,
                "error": {"code": "INVALID_CURSOR", "message": "bad", "kind": "validation"},
            },
        ]
    },
    "meta": {"v": 1, "serverTimeMs": 1700000000001},
}


@pytest.mark.parametrize("content_type", [JSON, MSGPACK])
def test_request_round_trips_in_upstream_shape(content_type):
    body = (
        json.dumps(UPSTREAM_REQUEST).encode()
        if content_type == JSON
        else msgpack.packb(UPSTREAM_REQUEST)
    )
    request = decode_as(OpsRequest, body, content_type)
    assert isinstance(request.ops[1], WriteOp)
    assert request.ops[1].write.entries[1].item.base_version == 3
    assert request.meta.trace_id == "t1"
    again = json.loads(encode(request, JSON))
    assert again == UPSTREAM_REQUEST


def test_response_round_trips_and_keeps_unknown_meta():
    raw = {**UPSTREAM_RESPONSE, "meta": {**UPSTREAM_RESPONSE["meta"], "region": "eu"}}
    response = decode_as(OpsResponse, json.dumps(raw).encode())
    assert isinstance(response, OpsResponseOk)
    assert json.loads(encode(response)) == raw
    err = decode_as(OpsResponse, b'{"ok":false,"error":{"code":"X","message":"m","kind":"auth"}}')
    assert isinstance(err, OpsResponseError)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"{not json", "malformed JSON"),
        (b'{"meta":{"v":1},"ops":[{"opId":"a","kind":"nope"}]}', "ops.0"),
        (b'{"meta":{"v":2},"ops":[]}', "meta.v"),
        (
            b'{"meta":{"v":1},"ops":[{"opId":"a","kind":"write","write":{"resource":"u","entries":'
            b'[{"action":"update","item":{"id":"x","value":{},"meta":{"idempotencyKey":"k",'
            b'"clientTimeMs":1}}}]}}]}',
            "baseVersion",
        ),
        (
            b'{"meta":{"v":1},"ops":[{"opId":"a","kind":"query","query":{"resource":"u"}},'
            b'{"opId":"a","kind":"query","query":{"resource":"u"}}]}',
            "duplicate opId",
        ),
        (b'{"meta":{"v":1},"ops":[],"extra":1}', "extra"),
    ],
)
def test_malformed_bodies_raise_one_typed_error(body, where):
    with pytest.raises(ValidationError) as info:
        decode_as(OpsRequest, body)
    assert where in info.value.message
    assert info.value.error.kind == "validation"


def test_malformed_msgpack_and_deep_nesting():
    with pytest.raises(ValidationError, match="msgpack"):
        decode_as(OpsRequest, b"\xc1\xff", MSGPACK)
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ValidationError):
        decode_as(OpsRequest, deep)


def test_media_type_negotiation():
    assert media_type(None) == JSON
    assert media_type("application/json; charset=utf-8") == JSON
    assert media_type("application/x-msgpack") == MSGPACK
    assert media_type("text/html, application/msgpack;q=0.9") == MSGPACK
    assert media_type("text/plain") == JSON


def test_error_kinds_map_to_exception_classes():
    conflict = error_from_standard(
        StandardError(code="CONFLICT", message="m", kind="conflict"),
        current=CurrentValue(version=3),
    )
    assert isinstance(conflict, ConflictError) and conflict.current.version == 3
    assert isinstance(
        error_from_standard(StandardError(code="N", message="m", kind="not_found")), NotFoundError
    )
    retryable = error_from_standard(
        StandardError(code="A", message="m", kind="adapter", retryable=True)
    )
    assert isinstance(retryable, BackendUnavailable) and retryable.retryable
    plain = error_from_standard(StandardError(code="A", message="m", kind="adapter"))
    assert type(plain) is AdapterError
    assert BackendUnavailable("x").error.to_wire() == {
        "code": "BACKEND_UNAVAILABLE",
        "message": "x",
        "kind": "adapter",
        "retryable": True,
    }


def test_operation_result_union_picks_by_ok():
    from atoma_actors.protocol import validate_as

    ok = validate_as(OperationResult, UPSTREAM_RESPONSE["data"]["results"][0])
    bad = validate_as(OperationResult, UPSTREAM_RESPONSE["data"]["results"][2])
    assert ok.ok and not bad.ok
