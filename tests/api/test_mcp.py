"""MCP at /mcp/ through the official `mcp` client (Streamable HTTP): every assistant a tool, a tool call a
stateless run; the transport's and JSON-RPC's errors over plain HTTP; split mode; custom auth."""
from __future__ import annotations

import json
import uuid
from contextlib import asynccontextmanager

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from conftest import ServerProcess, running
from test_auth import ALICE, BOB, EXAMPLES, auth_config

ACCEPT = {"Accept": "application/json, text/event-stream"}


def mcp_url(server) -> str:
    return f"{server.url}/mcp/"


@asynccontextmanager
async def mcp_client(server, headers: dict | None = None):
    """The official client on our /mcp/, sending `headers` (credentials) with every request."""
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(mcp_url(server), http_client=http)) as client:
            yield client


def rpc(http: httpx.Client, method: str, params: dict | None = None, id_=1, **kwargs) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": id_, "method": method, **({"params": params} if params is not None else {})}
    return http.post("/mcp/", json=body, headers={**ACCEPT, **kwargs.pop("headers", {})}, **kwargs)


async def all_tools(client: Client) -> list:
    tools, cursor = [], None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        if not (cursor := page.next_cursor):
            return tools


async def test_the_mcp_client_lists_assistants_as_tools_past_one_page_and_calls_one(server, client):
    marker = uuid.uuid4().hex[:8]
    mine = [await client.assistants.create("echo", name=f"echo {marker} {i}") for i in range(101)]
    described = await client.assistants.create("chat", name=f"chat-{marker}", description="Says hello")

    async with Client(mcp_url(server)) as mcp:
        tools = {tool.name: tool for tool in await all_tools(mcp)}  # a string nextCursor: the client goes on
        assert {f"echo_{marker}_{i}" for i in range(101)} <= set(tools)
        chat = tools[f"chat-{marker}"]
        assert chat.description == "Says hello" and chat.title == f"chat-{marker}"
        # the graph's input schema, its list of LangChain messages shown as the user's message
        assert chat.input_schema["type"] == "object"
        assert chat.input_schema["properties"]["messages"]["type"] == "string"
        assert tools[f"echo_{marker}_0"].description == f"Tool based on the echo {marker} 0 assistant"

        result = await mcp.call_tool(f"chat-{marker}", {"messages": "hi"})
        assert not result.is_error
        output = json.loads(result.content[0].text)
        assert [m["type"] for m in output["messages"]] == ["human", "ai"]
        assert output["messages"][-1]["content"] == "Hello there, this answer streams token by token."
    assert mine and described


async def test_a_tool_runs_with_its_assistants_config_as_a_stateless_run(server, client):
    name = f"seen-{uuid.uuid4().hex[:8]}"
    await client.assistants.create("seen_config", name=name, config={"configurable": {"flavour": "mint"}})
    threads_before = len(await client.threads.search(limit=1000))
    async with Client(mcp_url(server)) as mcp:
        result = await mcp.call_tool(name, {})
    assert not result.is_error
    assert "mint" in result.content[0].text
    assert len(await client.threads.search(limit=1000)) == threads_before  # stateless: no thread left


async def test_a_failing_graph_is_a_tool_error_not_a_protocol_error(server, client):
    name = f"failing-{uuid.uuid4().hex[:8]}"
    await client.assistants.create("failing", name=name)
    async with Client(mcp_url(server)) as mcp:
        result = await mcp.call_tool(name, {"fail": True})
        assert result.is_error
        assert "asked to fail" in result.content[0].text
        assert not (await mcp.call_tool(name, {})).is_error


def test_json_rpc_and_transport_errors(http):
    init = rpc(http, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}})
    assert init.status_code == 200
    assert init.json()["result"]["protocolVersion"] == "2025-06-18"
    assert init.json()["result"]["capabilities"] == {"tools": {"listChanged": False}}
    assert rpc(http, "ping", id_="a").json() == {"jsonrpc": "2.0", "id": "a", "result": {}}

    unknown = rpc(http, "resources/list")
    assert unknown.status_code == 200 and unknown.json()["error"]["code"] == -32601
    no_tool = rpc(http, "tools/call", {"name": "no-such-tool", "arguments": {}})
    assert no_tool.json()["error"]["code"] == -32602 and "no-such-tool" in no_tool.json()["error"]["message"]
    assert rpc(http, "tools/list", {"cursor": "nonsense"}).json()["error"]["code"] == -32602

    garbage = http.post("/mcp/", content=b"{not json", headers={**ACCEPT, "Content-Type": "application/json"})
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == -32700
    for bad in ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}], {"id": 1, "method": "ping"}, {"jsonrpc": "2.0"}):
        answer = http.post("/mcp/", json=bad, headers=ACCEPT)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == -32600, bad
    refused = rpc(http, "ping", headers={"Accept": "text/html"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == -32600

    notification = http.post("/mcp/", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=ACCEPT)
    assert notification.status_code == 202 and notification.content == b""
    # stateless: no server-initiated stream, no session to end
    assert http.get("/mcp/", headers={"Accept": "text/event-stream"}).status_code == 405
    assert http.delete("/mcp/").status_code == 405
    assert rpc(http, "ping").status_code == 200 and http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=ACCEPT).status_code == 200


async def test_split_mode_a_worker_runs_the_tool(cluster):
    cluster.add_worker()
    name = f"chat-{uuid.uuid4().hex[:8]}"
    await cluster.client.assistants.create("chat", name=name)
    async with Client(mcp_url(cluster.api)) as mcp:
        result = await mcp.call_tool(name, {"messages": "hi"})
    assert not result.is_error
    assert json.loads(result.content[0].text)["messages"][-1]["type"] == "ai"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, database_uri):
    config = auth_config(tmp_path_factory.mktemp("mcp-auth"), {"path": f"{EXAMPLES / 'auth.py'}:auth"})
    yield from running(ServerProcess(config, env={"DATABASE_URI": database_uri}))


async def test_with_custom_auth_each_tenant_sees_and_calls_its_own_tools(auth_server):
    from langgraph_sdk import get_client

    with httpx.Client(base_url=auth_server.url) as http:
        assert rpc(http, "tools/list").status_code == 401
    alice = get_client(url=auth_server.url, headers=ALICE)
    name = f"alices-{uuid.uuid4().hex[:8]}"
    await alice.assistants.create("chat", name=name)

    async with mcp_client(auth_server, ALICE) as mcp:
        assert name in {tool.name for tool in await all_tools(mcp)}
        result = await mcp.call_tool(name, {"messages": "hi"})
        assert not result.is_error, result.content
    async with mcp_client(auth_server, BOB) as mcp:
        assert name not in {tool.name for tool in await all_tools(mcp)}
        with pytest.raises(MCPError, match="Unknown tool"):
            await mcp.call_tool(name, {"messages": "hi"})
