"""The console (/console) in a real headless Chromium driven by Playwright, against a live server: what a
user sees and does there. Screenshots of each step land in test-artifacts/console/ (CONSOLE_SCREENSHOTS
names another folder); the folder is printed."""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from conftest import ServerProcess, TESTS, create_database, drop_database, running, serve

playwright = pytest.importorskip("playwright.sync_api", reason="playwright (the test extra) is not installed")
expect = playwright.expect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on this machine (.ci/run installs Debian's `chromium` where apt-get works)"
)
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS") or TESTS.parent / "test-artifacts" / "console")
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


@pytest.fixture(scope="module")
def server(postgres_server):
    """A server of these tests alone, on a fresh database: what the pages list (the first page of assistants
    by graph, say) must not depend on what other tests created."""
    database = create_database(postgres_server)
    try:
        yield from serve(database)
    finally:
        drop_database(postgres_server, database)


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {SHOTS}")
    with playwright.sync_playwright() as p:
        # Debian's Chromium, not a browser Playwright would download
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh tab at 1280×800; the test fails on any uncaught script error, and leaves a last screenshot."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(15000)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    tab.screenshot(path=SHOTS / f"{request.node.name}-last.png", full_page=True)
    context.close()
    assert not errors, errors


def shot(page, name: str) -> None:
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def assistant_id(url: str, graph: str, headers: dict | None = None) -> str:
    found = httpx.post(f"{url}/assistants/search", json={"graph_id": graph}, headers=headers).json()
    return found[0]["assistant_id"]


def start_run(page, input: dict | None = None, config: dict | None = None) -> None:
    if input is not None:
        page.get_by_test_id("run-input").fill(json.dumps(input))
    if config is not None:
        page.get_by_text("Config (JSON)").click()
        page.get_by_test_id("run-config").fill(json.dumps(config))
    page.get_by_test_id("start-run").click()


def thread_of(page) -> str:
    return page.get_by_test_id("thread-id").inner_text()


def test_the_console_is_served_from_the_package_and_loads_nothing_from_elsewhere(server, page):
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/console").headers["location"] == "console/"
        index = http.get("/console/")
        assert index.headers["content-type"].startswith("text/html")
        assert http.get("/console/app.js").headers["content-type"].startswith("text/javascript")
        assert http.get("/console/../pyproject.toml").status_code == 404
        assert http.get("/console/%2e%2e/api/console.py").status_code == 404
        assert "/console" not in json.dumps(http.get("/openapi.json").json()["paths"])  # not part of the API
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{server.url}/console")
    expect(page.get_by_test_id("assistant-link").filter(has_text=re.compile("^echo$"))).to_be_visible()
    assert requests and all(url.startswith(server.url) or url.startswith("data:") for url in requests), requests


def test_an_assistant_shows_its_graph_and_config(server, page):
    page.goto(f"{server.url}/console/#/assistants")
    page.get_by_test_id("assistant-link").filter(has_text=re.compile("^interrupt$")).click()
    graph = page.get_by_test_id("graph")
    for node in ("__start__", "draft", "review", "finish", "__end__"):
        expect(graph.locator(f'[data-node="{node}"]')).to_be_visible()
    assert graph.locator("path.edge").count() == 4
    expect(page.get_by_test_id("assistant-config")).to_be_visible()
    shot(page, "assistant-graph")


LOOPING_GRAPH = """async () => {
  const { drawGraph } = await import("./graph.js");
  const ids = ["__start__", "agent", "tools", "reflect", "summarize", "__end__"];
  const edges = [["__start__", "agent"], ["agent", "tools"], ["agent", "reflect"], ["tools", "agent"],
    ["reflect", "summarize"], ["agent", "__end__"], ["summarize", "__end__"]];
  const svg = drawGraph({nodes: ids.map((id) => ({id, data: {name: id}})),
    edges: edges.map(([source, target]) => ({source, target, conditional: source === "agent"}))});
  document.getElementById("view").replaceChildren(svg);
  return Object.fromEntries([...svg.querySelectorAll("g.node")].map((g) => [g.dataset.node, Number(g.querySelector("rect").getAttribute("y"))]));
}"""


def test_a_graph_with_branches_and_a_loop_is_drawn_in_layers(server, page):
    page.goto(f"{server.url}/console/#/crons")
    rows = page.evaluate(LOOPING_GRAPH)
    assert rows["__start__"] < rows["agent"] < rows["tools"] == rows["reflect"] < rows["summarize"] < rows["__end__"]
    assert page.locator("path.edge").count() == 7 and page.locator("path.edge.conditional").count() == 3
    shot(page, "graph-layers")


def test_create_a_thread_and_watch_a_run_stream_token_by_token(server, page):
    page.goto(f"{server.url}/console/#/threads")
    page.get_by_test_id("new-thread").click()
    expect(page.get_by_test_id("thread-id")).to_be_visible()
    thread_id = thread_of(page)
    page.get_by_test_id("assistant").select_option(label="chat (chat)")
    start_run(page, {"messages": [{"role": "user", "content": "hi"}]})
    output = page.get_by_test_id("stream-output")
    expect(output).to_have_text("Hello there, this answer streams token by token.")
    expect(page.get_by_test_id("stream-status")).to_have_text("finished")
    shot(page, "run-streamed")
    # the answer came as several message chunks, each shown as it arrived
    assert page.get_by_test_id("stream-events").locator("div", has_text=re.compile("^messages")).count() > 3
    expect(page.get_by_test_id("thread-status")).to_have_text("idle")
    expect(page.get_by_test_id("state-values")).to_contain_text("Hello there")
    runs = page.locator("section", has=page.get_by_role("heading", name="Runs"))
    expect(runs.get_by_test_id("status")).to_have_text(["success"])
    # the thread is listed, and found by its status
    page.goto(f"{server.url}/console/#/threads?status=idle")
    expect(page.locator(f'a[href="#/threads/{thread_id}"]')).to_be_visible()


def test_answer_an_interrupt_then_fork_from_a_past_checkpoint(server, page):
    thread = httpx.post(f"{server.url}/threads", json={}).json()["thread_id"]
    page.goto(f"{server.url}/console/#/threads/{thread}?assistant={assistant_id(server.url, 'interrupt')}")
    expect(page.get_by_test_id("assistant")).to_have_value(assistant_id(server.url, "interrupt"))
    start_run(page, {"topic": "cats"})
    interrupt = page.get_by_test_id("interrupt")
    expect(interrupt).to_contain_text("approve the draft?")
    expect(page.get_by_test_id("thread-status")).to_have_text("interrupted")
    shot(page, "interrupt-pending")
    interrupt.get_by_test_id("resume-value").fill("true")
    interrupt.get_by_test_id("resume").click()
    expect(page.get_by_test_id("thread-status")).to_have_text("idle")
    expect(page.get_by_test_id("state-values")).to_contain_text('"final": "draft about cats"')
    expect(page.get_by_test_id("interrupt")).to_have_count(0)
    shot(page, "interrupt-resumed")
    # fork from the checkpoint before the draft: the graph runs again from there and asks again
    page.get_by_test_id("checkpoint").filter(has_text="next: draft").get_by_test_id("fork").click()
    expect(page.get_by_test_id("fork-chip")).to_be_visible()
    start_run(page, {})
    expect(page.get_by_test_id("thread-status")).to_have_text("interrupted")
    expect(page.get_by_test_id("interrupt")).to_contain_text("approve the draft?")
    shot(page, "forked")
    state = httpx.get(f"{server.url}/threads/{thread}/state").json()
    assert state["next"] == ["review"] and "final" not in state["values"]


def test_cancel_a_slow_run_seen_in_the_queue(server, page, browser):
    thread = httpx.post(f"{server.url}/threads", json={}).json()["thread_id"]
    page.goto(f"{server.url}/console/#/threads/{thread}?assistant={assistant_id(server.url, 'slow')}")
    expect(page.get_by_test_id("assistant")).to_have_value(assistant_id(server.url, "slow"))
    start_run(page, {}, config={"configurable": {"delay": 3}})
    expect(page.get_by_test_id("stream-status")).to_have_text(re.compile("^running"))
    # the queue, in another tab, shows the run
    queue = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        queue.goto(f"{server.url}/console/#/queue")
        expect(queue.get_by_test_id("queue-stats")).to_be_visible()
        expect(queue.locator(f'a[href="#/threads/{thread}"]')).to_be_visible()
        # with the worker that holds it: this server's process ("host:pid:id")
        row = queue.locator("tr", has=queue.locator(f'a[href="#/threads/{thread}"]'))
        expect(row.get_by_test_id("worker")).to_have_text(re.compile(rf"^[^:]+:{server.proc.pid}:[0-9a-f]{{8}}$"))
        expect(row.get_by_test_id("status")).to_have_text("running")
        shot(queue, "queue")
    finally:
        queue.close()
    page.get_by_test_id("cancel-run").click()
    expect(page.get_by_test_id("stream-status")).to_have_text("cancelled")
    expect(page.get_by_test_id("thread-status")).not_to_have_text("busy")
    shot(page, "cancelled")
    [run] = httpx.get(f"{server.url}/threads/{thread}/runs").json()
    assert run["status"] == "interrupted"
    steps = httpx.get(f"{server.url}/threads/{thread}/state").json()["values"].get("steps", [])
    assert len(steps) < 5  # stopped before the end


def test_crons_store_and_empty_states(server, page):
    echo = assistant_id(server.url, "echo")
    marker = uuid.uuid4().hex[:8]
    with httpx.Client(base_url=server.url) as http:
        cron = http.post("/runs/crons", json={"assistant_id": echo, "schedule": "7 7 * * *", "input": {"marker": marker}})
        cron.raise_for_status()
        http.put("/store/items", json={"namespace": ["console", marker], "key": "note", "value": {"text": "remember me"}}).raise_for_status()
    try:
        page.goto(f"{server.url}/console/#/crons")
        expect(page.get_by_text(marker)).to_be_visible()
        expect(page.get_by_text("7 7 * * *").first).to_be_visible()
        shot(page, "crons")
        page.goto(f"{server.url}/console/#/store")
        page.get_by_text(f"console / {marker}").click()
        expect(page.get_by_text("note", exact=True)).to_be_visible()
        expect(page.get_by_text("remember me").first).to_be_visible()
        shot(page, "store")
        # a search that finds nothing says so; an unknown thread is an error, not a blank page
        page.goto(f"{server.url}/console/#/threads?" + urlencode({"metadata": json.dumps({"none": marker})}))
        expect(page.get_by_text("No thread matches these filters.")).to_be_visible()
        page.goto(f"{server.url}/console/#/threads/{uuid.uuid4()}")
        expect(page.get_by_role("alert")).to_contain_text("Not found")
        shot(page, "not-found")
    finally:
        httpx.delete(f"{server.url}/runs/crons/{cron.json()['cron_id']}")


def test_a_large_thread_is_paginated(server, page):
    thread = httpx.post(f"{server.url}/threads", json={}).json()["thread_id"]
    echo = assistant_id(server.url, "echo")
    for i in range(12):
        httpx.post(f"{server.url}/threads/{thread}/runs/wait", json={"assistant_id": echo, "input": {"messages": [{"role": "user", "content": f"m{i}"}]}}, timeout=30)
    page.goto(f"{server.url}/console/#/threads/{thread}")
    expect(page.get_by_test_id("checkpoint")).to_have_count(10)  # a page of history, older ones on demand
    page.get_by_role("button", name="Load older checkpoints").click()
    expect(page.get_by_test_id("checkpoint")).to_have_count(20)
    runs = page.locator("section", has=page.get_by_role("heading", name="Runs"))
    expect(runs.get_by_test_id("status")).to_have_count(12)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, database_uri):
    folder = tmp_path_factory.mktemp("console-auth")
    config = folder / "langgraph.json"
    config.write_text(json.dumps({
        "dependencies": [str(TESTS.parent / "examples")],
        "graphs": {"echo": str(TESTS.parent / "examples/graphs/echo.py") + ":graph"},
        "auth": {"path": str(TESTS.parent / "examples/auth.py") + ":auth"},
    }))
    yield from running(ServerProcess(config, env={"DATABASE_URI": database_uri}))


def test_with_custom_auth_it_asks_for_a_token_and_shows_only_that_users_threads(auth_server, page):
    url = auth_server.url
    mine = httpx.post(f"{url}/threads", json={"metadata": {"note": "alice's"}}, headers=ALICE).json()["thread_id"]
    theirs = httpx.post(f"{url}/threads", json={"metadata": {"note": "bob's"}}, headers=BOB).json()["thread_id"]
    page.goto(f"{url}/console/#/threads")
    dialog = page.locator("#auth-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Invalid or missing bearer token")
    shot(page, "auth-dialog")
    dialog.locator("input[name=value]").fill("Bearer alice-token")
    dialog.get_by_role("button", name="Use these credentials").click()
    expect(page.locator(f'a[href="#/threads/{mine}"]')).to_be_visible()
    expect(page.locator(f'a[href="#/threads/{theirs}"]')).to_have_count(0)
    shot(page, "auth-threads")
    # the token is kept for the tab: another view needs no new sign-in
    page.goto(f"{url}/console/#/threads/{theirs}")
    expect(page.get_by_role("alert")).to_contain_text("Not found")
    expect(dialog).to_be_hidden()


def test_the_queue_shows_only_the_callers_runs_and_says_when_there_are_none(auth_server, page):
    url = auth_server.url
    thread = httpx.post(f"{url}/threads", json={}, headers=ALICE).json()["thread_id"]
    run = httpx.post(f"{url}/threads/{thread}/runs", json={"assistant_id": "echo", "input": {}, "after_seconds": 60},
                     headers=ALICE).json()["run_id"]
    dialog = page.locator("#auth-dialog")

    def sign_in(token: str) -> None:
        dialog.locator("input[name=value]").fill(f"Bearer {token}")
        dialog.get_by_role("button", name="Use these credentials").click()

    try:
        page.goto(f"{url}/console/#/queue")
        sign_in("bob-token")
        expect(page.get_by_text("No run is pending or running.")).to_be_visible()
        page.locator("#credentials-button").click()  # sign out: asked again
        sign_in("alice-token")
        row = page.locator("tr", has=page.locator(f'a[href="#/threads/{thread}"]'))
        expect(row.get_by_test_id("status")).to_have_text("pending")
        expect(row).to_contain_text(re.compile(r"due in \d+ s"))
        expect(row.get_by_test_id("worker")).to_have_count(0)  # no worker holds it yet
        shot(page, "queue-pending")
    finally:
        httpx.post(f"{url}/threads/{thread}/runs/{run}/cancel", headers=ALICE)
