"""The auth policy on its own: which handler decides, what its answers mean, what authenticate is given."""
from __future__ import annotations

import pytest
from langgraph_sdk import Auth

from agent_server.auth import AuthUser, Forbidden, Policy, as_user, to_filter
from agent_server.storage.base import ANYONE, Filter

USER = AuthUser(identity="alice", permissions=["read"])


def policy_with_handlers() -> Policy:
    auth = Auth()

    @auth.on
    async def everything(ctx, value):
        return {"by": "global"}

    @auth.on(actions="delete")
    async def deletes(ctx, value):
        return {"by": "any delete"}

    @auth.on.threads
    async def threads(ctx, value):
        return {"by": "threads"}

    @auth.on.threads.create
    async def thread_create(ctx, value):
        value["metadata"]["owner"] = ctx.user.identity
        return None

    @auth.on.assistants.update
    async def no_updates(ctx, value):
        return False

    return Policy(auth)


@pytest.mark.parametrize("resource, action, by", [
    ("threads", "read", "threads"),        # the resource's handler over the global one
    ("threads", "delete", "threads"),      # ... and over an action-wide one
    ("crons", "delete", "any delete"),     # an action-wide handler over the global one
    ("crons", "read", "global"),
])
async def test_the_most_specific_handler_decides(resource, action, by):
    assert await policy_with_handlers().authorize(USER, resource, action, {}) == Filter(metadata={"by": by})


async def test_a_handler_may_stamp_the_payload_and_allow():
    value = {"metadata": {}}
    assert await policy_with_handlers().authorize(USER, "threads", "create", value) is ANYONE
    assert value["metadata"] == {"owner": "alice"}


async def test_false_is_forbidden():
    with pytest.raises(Forbidden):
        await policy_with_handlers().authorize(USER, "assistants", "update", {})


async def test_no_handler_allows_everything():
    assert await Policy(Auth()).authorize(USER, "threads", "read", {}) is ANYONE


def test_filters_become_one_metadata_containment():
    assert to_filter({"owner": "a", "team": {"$eq": "x"}, "tags": {"$contains": "t"}, "all": {"$contains": ["u", "v"]}}) == Filter(
        metadata={"owner": "a", "team": "x", "tags": ["t"], "all": ["u", "v"]}
    )
    with pytest.raises(TypeError):
        to_filter({"owner": {"$in": ["a"]}})


class Minimal:
    identity = "carol"
    permissions = ("x",)


def test_users_in_every_shape_the_contract_allows():
    assert as_user("bob") == {"identity": "bob", "permissions": [], "is_authenticated": True}
    assert as_user({"identity": "dave", "role": "admin"}).role == "admin"  # extra keys reach graphs too
    assert as_user(Minimal()).permissions == ["x"]
    with pytest.raises(TypeError):
        as_user({"name": "no identity"})


async def test_authenticate_gets_only_what_it_asks_for():
    auth = Auth()
    asked = []

    @auth.authenticate
    async def authenticate(authorization, method):
        asked.append((authorization, method))
        return authorization.removeprefix("Bearer ")

    async def never():
        raise AssertionError("not asked for")

    async def value_of(v):
        return v

    parts = {"authorization": lambda: value_of("Bearer erin"), "method": lambda: value_of("GET"), "body": never}
    assert (await Policy(auth).authenticate(parts)).identity == "erin"
    assert asked == [("Bearer erin", "GET")]
