"""The auth hook (reject with 401/403, scope per tenant) and the middleware hooks."""

from __future__ import annotations

import threading

import pytest
from atoma_server import Scope, ServerHooks
from server_wire import create, post, pull, query, request

from atoma_actors.protocol.errors import AuthError, LimitsError
from atoma_actors.protocol.ops import QueryOp

TENANTS = {
    "token-a": Scope(principal="alice", resource_prefix="a:"),
    "token-b": Scope(principal="bob", resource_prefix="b:", resources=frozenset({"notes"})),
    "token-x": Scope(principal="xavier"),
}


def token_auth(request):
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise AuthError("missing bearer token")
    token = header.removeprefix("Bearer ")
    if token == "banned":
        raise AuthError("this account is suspended", code="FORBIDDEN")
    if token not in TENANTS:
        raise AuthError("unknown token")
    return TENANTS[token]


def bearer(token):
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "UNAUTHORIZED"),
        (bearer("nope"), 401, "UNAUTHORIZED"),
        (bearer("banned"), 403, "FORBIDDEN"),
    ],
)
def test_auth_rejects_before_reading_the_body(serve, storage, http, headers, status, code):
    url = serve(storage, auth=token_auth).url
    got, body = post(http, url, request(create("w", "notes", "n1", {})), headers=headers)
    assert got == status
    assert body["error"]["kind"] == "auth" and body["error"]["code"] == code
    assert storage.resources() == []
    stream = http.get(url + "/ops/notify", headers=headers)
    assert stream.status_code == status


def test_async_auth_hook_is_awaited(serve, storage, http):
    async def auth(request):
        if request.headers.get("x-key") != "s3cret":
            raise AuthError("bad key")
        return

    url = serve(storage, auth=auth).url
    assert post(http, url, request(query("q", "notes")))[0] == 401
    assert post(http, url, request(query("q", "notes")), headers={"x-key": "s3cret"})[0] == 200


def test_tenants_see_only_their_own_resources(serve, storage, http):
    url = serve(storage, auth=token_auth).url
    status, body = post(
        http, url, request(create("w", "notes", "n1", {"by": "alice"})), headers=bearer("token-a")
    )
    assert status == 200
    status, body = post(
        http, url, request(create("w", "notes", "n1", {"by": "bob"})), headers=bearer("token-b")
    )
    assert status == 200 and body["data"]["results"][0]["ok"] is True
    assert storage.get("a:notes", "n1")["by"] == "alice"
    assert storage.get("b:notes", "n1")["by"] == "bob"

    _, body = post(http, url, request(query("q", "notes")), headers=bearer("token-a"))
    assert [r["by"] for r in body["data"]["results"][0]["data"]["data"]] == ["alice"]

    # A tenant's errors name its own resources, never the storage-side prefix.
    _, body = post(http, url, request(create("w", "notes", "n1", {})), headers=bearer("token-a"))
    error = body["data"]["results"][0]["data"]["results"][0]["error"]
    assert error["kind"] == "conflict" and error["details"]["resource"] == "notes"
    assert "a:" not in error["message"]


def test_allowlist_fails_the_forbidden_op_alone(serve, storage, http):
    url = serve(storage, auth=token_auth).url
    status, body = post(
        http,
        url,
        request(create("w1", "secrets", "s1", {}), create("w2", "notes", "n1", {})),
        headers=bearer("token-b"),
    )
    assert status == 200
    forbidden, allowed = body["data"]["results"]
    assert forbidden["ok"] is False and forbidden["error"]["kind"] == "auth"
    assert forbidden["error"]["code"] == "FORBIDDEN"
    assert allowed["ok"] is True
    assert storage.resources() == ["b:notes"]


def test_changes_pull_is_scoped_even_past_pages_of_other_tenants(serve, storage, http):
    url = serve(storage, auth=token_auth).url
    for i in range(5):
        post(http, url, request(create("w", "notes", f"x{i}", {})), headers=bearer("token-x"))
    post(http, url, request(create("w", "notes", "a1", {})), headers=bearer("token-a"))
    post(http, url, request(create("w", "notes", "b1", {})), headers=bearer("token-b"))

    # Pages of 2 hold only the unscoped writes first: alice must still reach her change.
    _, body = post(http, url, request(pull("p", limit=2)), headers=bearer("token-a"))
    changes = body["data"]["results"][0]["data"]["changes"]
    assert [(c["resource"], c["id"]) for c in changes] == [("notes", "a1")]

    _, body = post(http, url, request(pull("p")), headers=bearer("token-b"))
    changes = body["data"]["results"][0]["data"]["changes"]
    assert [(c["resource"], c["id"]) for c in changes] == [("notes", "b1")]

    _, body = post(http, url, request(pull("p")), headers=bearer("token-x"))
    assert len(body["data"]["results"][0]["data"]["changes"]) == 7


def test_storage_context_carries_the_principal(serve, storage, http):
    seen = []

    class Spy:
        def execute_ops(self, ops, meta, *, deadline=None, context=None):
            seen.append(context)
            return storage.execute_ops(ops, meta)

    def auth(request):
        return Scope(principal="alice", context={"tenant": "t1"})

    url = serve(Spy(), auth=auth).url
    post(http, url, request(query("q", "notes")))
    assert seen == [{"principal": "alice", "tenant": "t1"}]


class Recorder(ServerHooks):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def on_request(self, ctx):
        self.log.append((self.name, "request"))
        if ctx.request.headers.get("x-reject"):
            raise LimitsError("rate limited", code="RATE_LIMITED")

    def on_op(self, ctx, op):
        self.log.append((self.name, "op", op.op_id))
        if op.op_id == "veto":
            raise AuthError("no vetoes", code="FORBIDDEN")
        if isinstance(op, QueryOp) and op.op_id == "rewrite":
            return op.model_copy(
                update={"query": op.query.model_copy(update={"resource": "other"})}
            )
        return None

    def on_response(self, ctx, response, status):
        self.log.append((self.name, "response", status))
        ctx.response_headers[f"x-{self.name}"] = str(status)

    def on_error(self, ctx, error):
        self.log.append((self.name, "error", type(error).__name__))


def test_hooks_run_in_order_and_can_veto_rewrite_and_reject(serve, storage, http):
    log = []
    url = serve(storage, hooks=[Recorder("a", log), Recorder("b", log)]).url
    storage.execute_ops(*_seed_other())
    response = http.post(
        url + "/ops", json=request(query("rewrite", "users"), query("veto", "users"))
    )
    assert response.status_code == 200
    rewritten, vetoed = response.json()["data"]["results"]
    assert [r["id"] for r in rewritten["data"]["data"]] == ["o1"]
    assert vetoed["error"]["code"] == "FORBIDDEN"
    assert response.headers["x-a"] == response.headers["x-b"] == "200"
    assert log == [
        ("a", "request"),
        ("b", "request"),
        ("a", "op", "rewrite"),
        ("b", "op", "rewrite"),
        ("a", "op", "veto"),
        ("a", "response", 200),
        ("b", "response", 200),
    ]

    log.clear()
    response = http.post(url + "/ops", json=request(query("q", "users")), headers={"x-reject": "1"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "RATE_LIMITED"
    assert log == [
        ("a", "request"),
        ("a", "error", "LimitsError"),
        ("b", "error", "LimitsError"),
        ("a", "response", 422),
        ("b", "response", 422),
    ]


def test_a_broken_hook_never_breaks_the_server(serve, storage, http):
    class Broken(ServerHooks):
        def on_response(self, ctx, response, status):
            raise RuntimeError("metrics backend down")

    calls = threading.Event()

    class Boom(ServerHooks):
        def on_op(self, ctx, op):
            calls.set()
            raise ValueError("bug in a hook")

    url = serve(storage, hooks=[Broken()]).url
    assert post(http, url, request(query("q", "users")))[0] == 200
    url = serve(storage, hooks=[Boom()]).url
    status, body = post(http, url, request(query("q", "users")))
    assert calls.is_set() and status == 500 and body["error"]["kind"] == "internal"


def _seed_other():
    from atoma_actors.protocol.codecs import validate_as
    from atoma_actors.protocol.ops import Meta, Operation

    op = validate_as(Operation, create("seed", "other", "o1", {}))
    return [op], Meta()
