"""Two tenants, kept apart: an auth file for `"auth": {"path": "./auth.py:auth"}` in langgraph.json.

Each caller sends `Authorization: Bearer <token>`. Everything a caller creates (threads, assistants,
crons, runs) is stamped with their identity as `metadata.owner`, and they see only what they own: the
server applies that filter in PostgreSQL to every read, search, count, update, delete, run, cancel, join
and stream, and what they do not own is a 404, as if it did not exist. Store items live under the
caller's own namespace prefix.

The token table stands in for your identity provider: verify a JWT (PyJWT), ask your auth service, or
look the key up in your database instead.
"""
from langgraph_sdk import Auth

auth = Auth()

TOKENS = {  # token → the user it stands for
    "alice-token": {"identity": "alice", "permissions": ["threads:write"], "display_name": "Alice"},
    "bob-token": {"identity": "bob", "permissions": [], "display_name": "Bob"},
}


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid or missing bearer token")
    return TOKENS[token]


@auth.on
async def owner_only(ctx: Auth.types.AuthContext, value: dict) -> Auth.types.FilterType:
    """Every resource and action without a handler of its own: stamp the owner on what is created or
    updated, and show only the caller's own."""
    metadata = value.get("metadata")
    if isinstance(metadata, dict):
        metadata["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}


@auth.on.store
async def own_namespace(ctx: Auth.types.AuthContext, value: dict) -> None:
    """Store items: each user reads and writes under a namespace that starts with their identity."""
    value["namespace"] = (ctx.user.identity, *(value.get("namespace") or ()))
