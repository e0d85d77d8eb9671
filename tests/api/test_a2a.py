"""A2A at /a2a/{assistant_id} (JSON-RPC over HTTP, v0.3 methods): the chat graph (a `messages` key) as an
agent, a conversation on the thread its contextId names, streaming as SSE, tasks, errors; split mode."""
from __future__ import annotations

import json
import uuid

import httpx
import pytest

from conftest import ServerProcess, running
from test_auth import ALICE, BOB, EXAMPLES, auth_config

ANSWER = "Hello there, this answer streams token by token."


def chat_id() -> str:
    from agent_server.graphs import default_assistant_id

    return str(default_assistant_id("chat"))


def text(value: str, **message) -> dict:
    return {"message": {"role": "user", "messageId": uuid.uuid4().hex, "parts": [{"kind": "text", "text": value}], **message}}


def rpc(http: httpx.Client, method: str, params: dict, assistant_id: str | None = None, **kwargs) -> dict:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
    answer = http.post(f"/a2a/{assistant_id or chat_id()}", json=body, headers=headers, **kwargs)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == 7
    return answer.json()


def stream(http: httpx.Client, params: dict, **kwargs) -> list[dict]:
    body = {"jsonrpc": "2.0", "id": "s", "method": "message/stream", "params": params}
    with http.stream("POST", f"/a2a/{chat_id()}", json=body, headers={"Accept": "text/event-stream"}, **kwargs) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        return [json.loads(line[len("data: "):]) for line in answer.iter_lines() if line.startswith("data: ")]


def test_the_agent_card_describes_the_assistant(http, server):
    card = http.get("/.well-known/agent-card.json", params={"assistant_id": chat_id()}).json()
    assert card["name"] == "chat" and card["url"] == f"{server.url}/a2a/{chat_id()}"
    assert card["capabilities"]["streaming"] is True
    assert card["skills"][0]["metadata"]["inputSchema"]["supportsA2A"] is True
    assert {"description", "version", "defaultInputModes", "defaultOutputModes", "protocolVersion"} <= set(card)
    assert http.get(f"/a2a/{chat_id()}/.well-known/agent-card.json").json() == {**card, "skills": card["skills"]}
    assert http.get("/.well-known/agent-card.json").status_code == 400
    assert http.get("/.well-known/agent-card.json", params={"assistant_id": "nope"}).status_code == 400
    assert http.get("/.well-known/agent-card.json", params={"assistant_id": str(uuid.uuid4())}).status_code == 404


def test_message_send_runs_and_a_context_goes_on_on_one_thread(http, server):
    first = rpc(http, "message/send", text("hi"))["result"]
    assert first["kind"] == "task" and first["status"]["state"] == "completed"
    assert first["artifacts"][0]["parts"] == [{"kind": "text", "text": ANSWER}]
    context_id = first["contextId"]
    assert first["id"].startswith(f"{context_id}:")

    second = rpc(http, "message/send", text("again", contextId=context_id))["result"]
    assert second["contextId"] == context_id and second["id"] != first["id"]
    assert [(m["role"], m["parts"][0]["text"]) for m in second["history"]] == [
        ("user", "hi"), ("agent", ANSWER), ("user", "again"), ("agent", ANSWER),
    ]
    thread = http.get(f"/threads/{context_id}").json()  # the conversation is a thread of the HTTP API
    assert len(thread["values"]["messages"]) == 4

    got = rpc(http, "tasks/get", {"id": second["id"]})["result"]
    assert got["status"]["state"] == "completed" and got["artifacts"][0]["parts"][0]["text"] == ANSWER
    assert rpc(http, "tasks/get", {"id": first["id"]})["result"]["status"]["state"] == "completed"
    done = rpc(http, "tasks/cancel", {"id": second["id"]})["error"]
    assert done["code"] == -32002


def test_data_parts_are_input_keys(http, server):
    data = {"message": {"role": "user", "messageId": "m", "parts": [
        {"kind": "data", "data": {"messages": [{"role": "user", "content": "from data"}]}},
    ]}}
    task = rpc(http, "message/send", data)["result"]
    assert task["status"]["state"] == "completed"
    assert task["history"][0]["parts"][0]["text"] == "from data"


def test_message_stream_sends_status_and_artifact_updates(http, server):
    events = stream(http, text("hi"))
    results = [e["result"] for e in events]
    assert all(e["id"] == "s" and e["jsonrpc"] == "2.0" for e in events)
    assert results[0]["kind"] == "task" and results[0]["status"]["state"] == "submitted"
    working = [r for r in results if r.get("kind") == "status-update" and r["status"]["state"] == "working"]
    assert len(working) > 1  # token by token: the text so far
    assert working[-1]["status"]["message"]["parts"][0]["text"] == ANSWER
    artifact = next(r for r in results if r.get("kind") == "artifact-update")
    assert artifact["artifact"]["parts"] == [{"kind": "text", "text": ANSWER}]
    assert results[-1]["kind"] == "status-update" and results[-1]["status"]["state"] == "completed" and results[-1]["final"]
    task_id = results[0]["id"]
    assert rpc(http, "tasks/get", {"id": task_id})["result"]["status"]["state"] == "completed"


def test_tasks_cancel_cancels_a_running_task(http, client, server):
    slow = str(__import__("agent_server.graphs", fromlist=["x"]).default_assistant_id("slow"))
    # the slow graph takes no messages, but data parts
    body = {"jsonrpc": "2.0", "id": 1, "method": "message/stream", "params": {"message": {
        "role": "user", "messageId": "m", "parts": [{"kind": "data", "data": {}}]}}}
    with http.stream("POST", f"/a2a/{slow}", json=body, headers={"Accept": "text/event-stream"}) as answer:
        first = json.loads(next(line for line in answer.iter_lines() if line.startswith("data: "))[6:])["result"]
        cancelled = rpc(http, "tasks/cancel", {"id": first["id"]}, assistant_id=slow)["result"]
        assert cancelled["status"]["state"] == "canceled"
    assert rpc(http, "tasks/get", {"id": first["id"]}, assistant_id=slow)["result"]["status"]["state"] == "canceled"


def test_protocol_errors(http, server):
    def error(answer: dict) -> int:
        return answer["error"]["code"]

    assert error(rpc(http, "message/send", text("hi"), assistant_id="not-a-uuid")) == -32602
    unknown = rpc(http, "message/send", text("hi"), assistant_id=str(uuid.uuid4()))
    assert error(unknown) == -32602 and "not found" in unknown["error"]["message"]
    file_part = {"message": {"role": "user", "messageId": "m", "parts": [{"kind": "file", "file": {"uri": "http://x"}}]}}
    assert error(rpc(http, "message/send", file_part)) == -32005
    assert error(rpc(http, "message/send", {"message": {"role": "user", "parts": []}})) == -32602
    assert error(rpc(http, "tasks/get", {"id": "nope"})) == -32001
    assert error(rpc(http, "tasks/get", {"id": f"{uuid.uuid4()}:{uuid.uuid4()}"})) == -32001
    assert error(rpc(http, "tasks/pushNotificationConfig/set", {"id": "x"})) == -32601
    unknown_task = {"jsonrpc": "2.0", "id": 8, "method": "tasks/resubscribe", "params": {"id": "x"}}
    answer = http.post(f"/a2a/{chat_id()}", json=unknown_task, headers={"Accept": "text/event-stream"}).json()
    assert answer["id"] == 8 and error(answer) == -32001
    echo = str(__import__("agent_server.graphs", fromlist=["x"]).default_assistant_id("failing"))
    assert error(rpc(http, "message/send", text("hi"), assistant_id=echo)) == -32602  # no messages key

    garbage = http.post(f"/a2a/{chat_id()}", content=b"{oops", headers={"Content-Type": "application/json"})
    assert garbage.json() == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": garbage.json()["error"]["message"]}}
    assert http.post(f"/a2a/{chat_id()}", json={"id": 1, "method": "tasks/get"}).json()["error"]["code"] == -32600
    refused = http.post(f"/a2a/{chat_id()}", json={"jsonrpc": "2.0", "id": 1, "method": "message/stream", "params": text("x")},
                        headers={"Accept": "application/json"})
    assert refused.status_code == 400
    assert http.get(f"/a2a/{chat_id()}").status_code == 405


def test_a_failing_graph_is_a_failed_task(http, client, server):
    failing = str(__import__("agent_server.graphs", fromlist=["x"]).default_assistant_id("failing"))
    data = {"message": {"role": "user", "messageId": "m", "parts": [{"kind": "data", "data": {"fail": True}}]}}
    task = rpc(http, "message/send", data, assistant_id=failing)["result"]
    assert task["status"]["state"] == "failed"
    assert "asked to fail" in task["status"]["message"]["parts"][0]["text"]


def test_split_mode_a_worker_runs_the_task_and_the_stream_crosses_the_broker(cluster):
    cluster.add_worker()
    with httpx.Client(base_url=cluster.api.url, timeout=30) as http:
        results = [e["result"] for e in stream(http, text("hi"))]
        assert results[-1]["status"]["state"] == "completed"
        assert any(r.get("kind") == "artifact-update" for r in results)
        task = rpc(http, "message/send", text("again", contextId=results[0]["contextId"]))["result"]
        assert task["status"]["state"] == "completed" and len(task["history"]) == 4


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, database_uri):
    config = auth_config(tmp_path_factory.mktemp("a2a-auth"), {"path": f"{EXAMPLES / 'auth.py'}:auth"})
    yield from running(ServerProcess(config, env={"DATABASE_URI": database_uri}))


def test_with_custom_auth_a_tenants_conversation_is_its_own(auth_server):
    with httpx.Client(base_url=auth_server.url, timeout=30) as http:
        assert http.post(f"/a2a/{chat_id()}", json={"jsonrpc": "2.0", "id": 1, "method": "tasks/get"}).status_code == 401
        assistant = http.post("/assistants", json={"graph_id": "chat"}, headers=ALICE).json()["assistant_id"]
        task = rpc(http, "message/send", text("hi"), assistant_id=assistant, headers=ALICE)["result"]
        assert task["status"]["state"] == "completed"
        assert http.get(f"/threads/{task['contextId']}", headers=ALICE).status_code == 200
        assert http.get(f"/threads/{task['contextId']}", headers=BOB).status_code == 404
        assert rpc(http, "tasks/get", {"id": task["id"]}, assistant_id=assistant, headers=BOB)["error"]["code"] == -32602


async def test_the_a2a_sdk_client_sends_streams_and_gets_tasks(server):
    """The official a2a-sdk client, from the agent card (v0.3 JSON-RPC): a message, a streamed one on the
    same context, the task again."""
    from a2a.client import ClientConfig, create_client
    from a2a.types.a2a_pb2 import GetTaskRequest, Message, Part, Role, SendMessageRequest, TaskState

    url = f"{server.url}/a2a/{chat_id()}"

    def say(words: str, context_id: str = "") -> SendMessageRequest:
        message = Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=[Part(text=words)], context_id=context_id)
        return SendMessageRequest(message=message)

    client = await create_client(url, client_config=ClientConfig(streaming=False))
    [sent] = [item async for item in client.send_message(say("hi"))]
    assert sent.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert sent.task.artifacts[0].parts[0].text == ANSWER

    streaming = await create_client(url, client_config=ClientConfig(streaming=True))
    updates = [item async for item in streaming.send_message(say("again", sent.task.context_id))]
    assert updates[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    artifact = next(u.artifact_update.artifact for u in updates if u.HasField("artifact_update"))
    assert artifact.parts[0].text == ANSWER

    task = await client.get_task(GetTaskRequest(id=updates[-1].status_update.task_id))
    assert task.context_id == sent.task.context_id and len(task.history) == 4


def _resubscribe(http: httpx.Client, assistant_id: str, task_id: str) -> list[dict]:
    body = {"jsonrpc": "2.0", "id": "r", "method": "tasks/resubscribe", "params": {"id": task_id}}
    with http.stream("POST", f"/a2a/{assistant_id}", json=body, headers={"Accept": "text/event-stream"}) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        return [json.loads(line[6:])["result"] for line in answer.iter_lines() if line.startswith("data: ")]


def test_tasks_resubscribe_follows_a_running_task_to_its_end_and_answers_an_ended_one(http, server):
    """A client that lost its message/stream resubscribes: the task as it stands, then its updates to the final
    one; a task that has ended answers as it stands, then its final status."""
    created = http.post("/assistants", json={"graph_id": "slow", "config": {"configurable": {"delay": 0.4}}})
    slow = created.json()["assistant_id"]  # 5 steps of 0.4 s: still running when the client comes back
    body = {"jsonrpc": "2.0", "id": 1, "method": "message/stream", "params": {"message": {
        "role": "user", "messageId": "m", "parts": [{"kind": "data", "data": {}}]}}}
    with http.stream("POST", f"/a2a/{slow}", json=body, headers={"Accept": "text/event-stream"}) as answer:
        first = json.loads(next(line for line in answer.iter_lines() if line.startswith("data: "))[6:])["result"]
    # that stream was dropped; the task goes on
    again = _resubscribe(http, slow, first["id"])
    assert again[0]["kind"] == "task" and again[0]["id"] == first["id"]
    assert again[0]["status"]["state"] in ("submitted", "working")
    assert again[-1]["kind"] == "status-update" and again[-1]["final"] is True
    assert again[-1]["status"]["state"] == "completed" and again[-1]["taskId"] == first["id"]
    ended = _resubscribe(http, slow, first["id"])
    assert ended[0]["status"]["state"] == "completed"
    assert ended[-1]["final"] is True and ended[-1]["status"]["state"] == "completed"
