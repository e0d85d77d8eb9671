"""A2A (https://a2a-protocol.org, v0.3 JSON-RPC binding): an assistant whose graph takes `messages` is an
agent. A message is a run on the thread its `contextId` names (made if new), so a conversation goes on
on one thread; a task is one run, its id "<contextId>:<run id>" (as the official server's)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, AsyncIterator, Awaitable, Callable
from uuid import UUID, uuid4

from .. import __version__
from ..errors import AgentServerError, NotFound
from ..runtime import Runtime
from ..serde import loads
from ..services import Context
from ..services import assistants, runs, threads
from .jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, RpcError, params_of

TASK_NOT_FOUND = -32001
TASK_NOT_CANCELABLE = -32002
UNSUPPORTED_OPERATION = -32004
CONTENT_TYPE_NOT_SUPPORTED = -32005

METHODS = ("message/send", "message/stream", "tasks/get", "tasks/cancel", "tasks/resubscribe")
STATES = {  # a run's status as a task's state; a run that stopped on an interrupt is "input-required"
    "pending": "submitted", "running": "working", "success": "completed", "interrupted": "canceled",
    "error": "failed", "timeout": "failed",
}
FINAL = {"completed", "failed", "canceled", "rejected"}
MODES = ["application/json", "text/plain"]


# ---- the agent ------------------------------------------------------------------------------------------

async def agent(rt: Runtime, ctx: Context, assistant_id: str) -> tuple[dict, dict]:
    """The assistant an /a2a/{assistant_id} names and its input schema."""
    try:
        uid = UUID(assistant_id)
    except ValueError:
        raise RpcError(INVALID_PARAMS, "Invalid assistant ID: must be a UUID") from None
    try:
        assistant = await assistants.get(rt, ctx, uid)
        schemas = await assistants.schemas(rt, ctx, uid)
    except NotFound:
        raise RpcError(INVALID_PARAMS, f"Assistant '{assistant_id}' not found") from None
    return assistant, schemas.get("input_schema") or schemas.get("state_schema") or {}


async def agent_card(rt: Runtime, ctx: Context, assistant_id: str, base_url: str) -> dict:
    assistant, schema = await agent(rt, ctx, assistant_id)
    name = assistant["name"]
    description = assistant.get("description") or f"{name} assistant"
    url = f"{base_url}/a2a/{assistant['assistant_id']}"
    properties = schema.get("properties") or {}
    return {
        "protocolVersion": "0.3.0",
        "name": name,
        "description": description,
        "url": url,
        "preferredTransport": "JSONRPC",
        "supportedInterfaces": [{"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"}],
        "capabilities": {"streaming": True, "pushNotifications": False, "stateTransitionHistory": False},
        "defaultInputModes": MODES,
        "defaultOutputModes": MODES,
        "skills": [{
            "id": f"{assistant['assistant_id']}-main",
            "name": f"{name} Capabilities",
            "description": description,
            "tags": ["assistant", "langgraph"],
            "examples": [],
            "inputModes": MODES,
            "outputModes": MODES,
            "metadata": {"inputSchema": {
                "required": schema.get("required") or [], "properties": sorted(properties),
                "supportsA2A": "messages" in properties,
            }},
        }],
        "version": __version__,
    }


# ---- requests -------------------------------------------------------------------------------------------

async def handle(
    rt: Runtime, ctx: Context, assistant_id: str, message: dict, disconnected: Callable[[], Awaitable]
) -> dict:
    """The result of one request but the streaming ones (STREAMING); RpcError for an error object."""
    method, params = message["method"], params_of(message)
    if method not in METHODS or method in STREAMING:
        raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
    assistant, schema = await agent(rt, ctx, assistant_id)
    if method == "message/send":
        turn = await _turn(rt, ctx, assistant, schema, params)
        run, result = await _run(runs.wait(rt, ctx, turn.thread_id, assistant["assistant_id"], turn.payload, disconnected()))
        if result is None:  # the caller left: nobody reads this
            return {}
        return _task(turn.task_id(run), turn.context_id, _state(result["status"], result.get("output")),
                     result.get("output"), assistant)
    run, thread = await _resolve(rt, ctx, assistant, params)
    context_id = str(run["thread_id"])
    if method == "tasks/cancel":
        if run["status"] not in ("pending", "running"):
            raise RpcError(TASK_NOT_CANCELABLE, "Task is not cancelable in its current state")
        await runs.cancel_one(rt, ctx, run["thread_id"], run["run_id"], "interrupt", wait=True)
        return _task(params["id"], context_id, "canceled", None, assistant, note="Task was canceled")
    return await _current(rt, ctx, run, thread, params["id"], assistant)


async def _current(rt: Runtime, ctx: Context, run: dict, thread: dict, task_id: str, assistant: dict) -> dict:
    """The task as it stands (tasks/get)."""
    latest = (await runs.list_runs(rt, ctx, run["thread_id"], status=None, limit=1, offset=0))[0]["run_id"] == run["run_id"]
    state = STATES.get(run["status"], "submitted")
    if state == "completed" and latest and thread["status"] == "interrupted":
        state = "input-required"
    # the thread's values are this task's outcome only while it is the thread's latest run
    values = thread.get("values") if latest else None
    if state == "input-required":
        values = {**(values or {}), "__interrupt__": [i for group in (thread.get("interrupts") or {}).values() for i in group]}
    return _task(task_id, str(run["thread_id"]), state, values, assistant)


class _Turn:
    """What a message asks for: the run's thread and payload, and the task it continues (if any)."""

    def __init__(self, thread_id: UUID, payload: dict, message: dict, task_id: str | None) -> None:
        self.thread_id, self.payload, self.message, self.existing = thread_id, payload, message, task_id
        self.context_id = str(thread_id)

    def task_id(self, run: dict) -> str:
        return self.existing or f"{self.context_id}:{run['run_id']}"


async def _turn(rt: Runtime, ctx: Context, assistant: dict, schema: dict, params: dict) -> _Turn:
    message = params.get("message")
    if not isinstance(message, dict):
        raise RpcError(INVALID_PARAMS, "Missing or invalid 'message' in params")
    for key in ("messageId", "role"):
        if not isinstance(message.get(key), str) or not message[key]:
            raise RpcError(INVALID_PARAMS, f"Missing required '{key}' in message")
    parts = message.get("parts")
    if not isinstance(parts, list) or not parts:
        raise RpcError(INVALID_PARAMS, "Message must contain at least one part")
    texts, data = _parts(parts)
    if texts and "messages" not in (schema.get("properties") or {}):
        raise RpcError(INVALID_PARAMS, (
            f"Assistant '{assistant['assistant_id']}' (graph '{assistant['graph_id']}') does not take A2A messages: "
            "its input has no 'messages' key"
        ))
    role = "human" if message["role"] == "user" else "ai"
    graph_input = {**data, **({"messages": [{"type": role, "content": "\n".join(texts), "id": message["messageId"]}]} if texts else {})}
    context_id, task_id = message.get("contextId"), message.get("taskId")
    payload: dict[str, Any] = {"input": graph_input, "if_not_exists": "create"}
    if task_id is not None:
        run, thread = await _resolve(rt, ctx, assistant, {"id": task_id, "contextId": context_id})
        if run["status"] != "success" or thread["status"] != "interrupted":
            raise RpcError(UNSUPPORTED_OPERATION, "A terminal task cannot accept another message")
        # the task waits for input: the message resumes it
        payload = {"command": {"resume": "\n".join(texts) if texts else data}}
        return _Turn(run["thread_id"], payload, message, task_id)
    if context_id is None:
        return _Turn(uuid4(), payload, message, None)
    try:
        return _Turn(UUID(str(context_id)), payload, message, None)
    except ValueError:
        raise RpcError(INVALID_PARAMS, "contextId must be a UUID (the id of the conversation's thread)") from None


def _parts(parts: list) -> tuple[list[str], dict]:
    """Text parts become the user's message; data parts (objects) are keys of the graph's input."""
    texts, data = [], {}
    for part in parts:
        kind = part.get("kind") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "data" and isinstance(part.get("data"), dict):
            data.update(part["data"])
        else:
            raise RpcError(CONTENT_TYPE_NOT_SUPPORTED, (
                "Unsupported part: A2A agents here take 'text' parts and 'data' parts (a JSON object), "
                f"not {kind or type(part).__name__!r}"
            ))
    return texts, data


async def _run(work: Awaitable):
    """A run's service call; the errors of its rules as the error objects of A2A."""
    try:
        return await work
    except NotFound as exc:
        raise RpcError(INVALID_PARAMS, exc.detail) from None
    except AgentServerError as exc:
        if exc.status_code >= 500:
            raise
        raise RpcError(INVALID_PARAMS, f"Invalid request: {exc.detail}") from None


async def _resolve(rt: Runtime, ctx: Context, assistant: dict, params: dict) -> tuple[dict, dict]:
    """The run and thread of a task id ("<contextId>:<run id>") of this agent; TASK_NOT_FOUND otherwise."""
    task_id, context_id = params.get("id"), params.get("contextId")
    if not isinstance(task_id, str) or not task_id:
        raise RpcError(INVALID_PARAMS, "Missing required parameter: id (task_id)")
    thread_part, _, run_part = task_id.partition(":")
    try:
        thread_id, run_id = UUID(thread_part), UUID(run_part)
        if context_id is not None and UUID(str(context_id)) != thread_id:
            raise ValueError
        run = await runs.get(rt, ctx, thread_id, run_id)
        thread = await threads.get(rt, ctx, thread_id)
    except (ValueError, NotFound):
        raise RpcError(TASK_NOT_FOUND, f"Task not found: {task_id}") from None
    if run["assistant_id"] != assistant["assistant_id"]:
        raise RpcError(TASK_NOT_FOUND, f"Task not found: {task_id}")
    return run, thread


# ---- shapes ---------------------------------------------------------------------------------------------

def _now() -> str:
    return datetime.now(UTC).isoformat()


def _state(status: str, output: Any) -> str:
    if status == "success" and isinstance(output, dict) and output.get("__interrupt__"):
        return "input-required"
    if isinstance(output, dict) and "__error__" in output:
        return "failed"
    return STATES.get(status, "failed")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b if isinstance(b, str) else b.get("text", "") for b in content if isinstance(b, (str, dict)))
    return ""


def _role(message: dict) -> str | None:
    kind = str(message.get("type") or message.get("role") or "").lower().removesuffix("messagechunk").removesuffix("message")
    return {"human": "user", "user": "user", "ai": "agent", "assistant": "agent"}.get(kind)


def _message(role: str, text: str, task_id: str, context_id: str, message_id: str | None = None) -> dict:
    return {
        "kind": "message", "role": role, "parts": [{"kind": "text", "text": text}],
        "messageId": message_id or str(uuid4()), "taskId": task_id, "contextId": context_id,
    }


def _reply(values: Any) -> list[dict]:
    """The agent's answer: its last message's text, or the values when it says nothing."""
    messages = values.get("messages") if isinstance(values, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and _role(message) == "agent" and _text(message.get("content")):
            return [{"kind": "text", "text": _text(message["content"])}]
    return [{"kind": "data", "data": values if isinstance(values, dict) else {"output": values}}]


def _artifact(state: str, values: Any, assistant: dict) -> dict | None:
    if state == "input-required":
        return {
            "artifactId": str(uuid4()), "name": "Interrupt", "description": "Agent requires input to continue",
            "parts": [{"kind": "data", "data": {"id": i.get("id"), "value": i.get("value")}} for i in values["__interrupt__"]],
        }
    if state == "completed":
        return {
            "artifactId": str(uuid4()), "name": "Assistant Response",
            "description": f"Response from assistant {assistant['assistant_id']}", "parts": _reply(values),
        }
    return None


def _task(
    task_id: str, context_id: str, state: str, values: Any, assistant: dict, note: str | None = None
) -> dict:
    status: dict[str, Any] = {"state": state, "timestamp": _now()}
    if state == "failed":
        error = values.get("__error__") if isinstance(values, dict) else None
        detail = ": ".join(str(error[k]) for k in ("error", "message") if error.get(k)) if isinstance(error, dict) else state
        note = f"Error executing assistant: {detail}"
    if note:
        status["message"] = _message("agent", note, task_id, context_id)
    task: dict[str, Any] = {"kind": "task", "id": task_id, "contextId": context_id, "status": status}
    messages = values.get("messages") if isinstance(values, dict) else None
    if isinstance(messages, list):
        task["history"] = [
            _message(role, _text(m.get("content")), task_id, context_id, m.get("id"))
            for m in messages if isinstance(m, dict) and (role := _role(m))
        ]
    if (artifact := _artifact(state, values, assistant)) is not None:
        task["artifacts"] = [artifact]
    return task


# ---- message/stream -------------------------------------------------------------------------------------

async def stream(
    rt: Runtime, ctx: Context, assistant_id: str, message: dict
) -> tuple[runs.RunFollower, AsyncIterator[dict | None]]:
    """Start the run of a message/stream; its follower (the caller closes it) and the results to send: the
    task submitted, a status update per token of the agent's answer (the text so far), the answer as an
    artifact, the final status. None: the run is quiet (a heartbeat)."""
    assistant, schema = await agent(rt, ctx, assistant_id)
    turn = await _turn(rt, ctx, assistant, schema, params_of(message))
    payload = {**turn.payload, "stream_mode": ["messages-tuple", "values"]}
    run, follower = await _run(runs.stream(rt, ctx, turn.thread_id, assistant["assistant_id"], payload))
    task_id, sent = turn.task_id(run), turn.message
    user = _message("user" if sent["role"] == "user" else "agent", "", task_id, turn.context_id, sent["messageId"])
    user["parts"] = sent["parts"]
    submitted = {"kind": "task", "id": task_id, "contextId": turn.context_id, "history": [user],
                 "status": {"state": "submitted", "timestamp": _now()}}
    return follower, _updates(follower, submitted, assistant)


async def resubscribe(
    rt: Runtime, ctx: Context, assistant_id: str, message: dict
) -> tuple[runs.RunFollower, AsyncIterator[dict | None]]:
    """A tasks/resubscribe: the task as it stands, then its updates from now on, as message/stream sends them (a
    task that has ended: as it stands, then its final status)."""
    assistant, _ = await agent(rt, ctx, assistant_id)
    params = params_of(message)
    run, thread = await _resolve(rt, ctx, assistant, params)
    current = await _current(rt, ctx, run, thread, params["id"], assistant)
    # an end between that read and this subscription is in the database: events(check_first) finds it
    follower = await runs.RunFollower(rt, run["run_id"]).__aenter__()
    return follower, _updates(follower, current, assistant, check_first=True)


# the methods answered as SSE, not by handle: the (follower, updates) of each
STREAMING = {"message/stream": stream, "tasks/resubscribe": resubscribe}


async def _updates(follower: runs.RunFollower, first: dict, assistant: dict,
                   check_first: bool = False) -> AsyncIterator[dict | None]:
    """`first` (the task), then a status update per token of the agent's answer, the answer as an artifact and the
    final status. `check_first`: the run may have ended before `follower` subscribed."""
    task_id, context_id = first["id"], first["contextId"]
    yield first
    texts: dict[str, str] = {}

    def update(state: str, final: bool, note: dict | None = None) -> dict:
        status = {"state": state, **({"message": note} if note else {}), "timestamp": _now()}
        return {"taskId": task_id, "contextId": context_id, "kind": "status-update", "status": status, "final": final}

    async for event, data, _ in follower.events(check_first=check_first):
        if not event:
            yield None
        elif event == "messages":
            chunk = loads(data)[0]
            if isinstance(chunk, dict) and _role(chunk) == "agent" and (delta := _text(chunk.get("content"))):
                key = str(chunk.get("id"))
                texts[key] = texts.get(key, "") + delta
                yield update("working", False, _message("agent", texts[key], task_id, context_id))
    if follower.result is None:  # this server stops following (shutting down): the task goes on
        return
    output = follower.result.get("output")
    state = _state(follower.result["status"], output)
    if (artifact := _artifact(state, output, assistant)) is not None:
        yield {"taskId": task_id, "contextId": context_id, "kind": "artifact-update", "artifact": artifact,
               "append": False, "lastChunk": True}
    final = _task(task_id, context_id, state, output, assistant)["status"]
    yield update(state, True, final.get("message"))
