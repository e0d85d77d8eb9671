"""Health, server information, the API description, and how every error is worded."""
import pytest


def test_ok_answers_as_the_official_server(http):
    assert http.get("/ok").json() == {"ok": True, "services": {}}


def test_ok_with_check_db_reaches_the_database(http):
    r = http.get("/ok", params={"check_db": 1})
    assert r.status_code == 200 and r.json()["ok"] is True


def test_info_has_the_official_keys(http):
    info = http.get("/info").json()
    # the official keys, and ours: where checkpoints and the store live (README, Persistence backends)
    assert set(info) == {"version", "langgraph_py_version", "flags", "host", "persistence"}
    assert info["persistence"]["checkpointer"]["backend"] == "default"
    assert set(info["persistence"]["checkpointer"]["capabilities"].values()) == {"sql"}
    assert info["version"] and info["langgraph_py_version"]
    assert set(info["flags"]) == {
        "assistants", "crons", "langsmith", "langsmith_tracing_replicas", "langsmith_tracing_session_on_runs",
    }
    assert info["flags"]["assistants"] is True
    assert info["host"] == {
        "kind": "self-hosted", "project_id": None, "host_revision_id": None, "revision_id": None, "tenant_id": None,
    }


def test_openapi_lists_resource_routes(http):
    paths = http.get("/openapi.json").json()["paths"]
    for path in ("/assistants/search", "/threads", "/threads/{thread_id}/runs/stream", "/runs/wait"):
        assert path in paths


def test_docs_page_is_served(http):
    r = http.get("/docs")
    assert r.status_code == 200 and "html" in r.headers["content-type"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1,2"])
def test_malformed_json_is_422_invalid_json(http, raw):
    r = http.post("/assistants", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json() == {"detail": "Invalid JSON in request body"}


def test_missing_field_is_422_naming_it(http):
    r = http.post("/assistants", json={})
    assert r.status_code == 422
    assert r.json()["detail"].startswith('"graph_id" is a required property\n\nFailed validating "required" in schema')


@pytest.mark.parametrize(
    "body, first_line",
    [
        ({"graph_id": 123}, '123 is not of type "string"'),
        ({"graph_id": "echo", "metadata": "x"}, '"x" is not of type "object"'),
        ({"graph_id": "echo", "if_exists": "bogus"}, '"bogus" is not one of "raise" or "do_nothing"'),
    ],
)
def test_wrong_field_type_is_422_naming_field_and_value(http, body, first_line):
    r = http.post("/assistants", json=body)
    field = list(body)[-1]
    assert r.status_code == 422
    assert r.json()["detail"] == (
        f'{first_line}\n\nFailed validating "{"enum" if "one of" in first_line else "type"}" '
        f'in schema["properties"]["{field}"]\n\nOn instance["{field}"]:\n    {first_line.split(" is ")[0]}'
    )


def test_body_of_the_wrong_json_type_is_422(http):
    r = http.post("/assistants", json=[1])
    assert r.status_code == 422 and r.json()["detail"].startswith('[1] is not of type "object"')


def test_non_uuid_assistant_id_in_a_body_is_422(http):
    r = http.post("/assistants", json={"graph_id": "echo", "assistant_id": "xyz"})
    assert r.status_code == 422 and r.json() == {"detail": "Invalid assistant ID: must be a UUID"}


def test_values_postgres_cannot_store_are_422_not_500(http):
    r = http.post("/assistants", json={"graph_id": "echo", "name": "a\u0000b"})
    assert r.status_code == 422
    r = http.post("/assistants/search", json={"offset": 10**20})
    assert r.status_code == 422


def test_unknown_route_and_wrong_method(http):
    assert (http.get("/nope").status_code, http.get("/nope").json()) == (404, {"detail": "Not Found"})
    r = http.get("/assistants")
    assert r.status_code == 405 and r.json() == {"detail": "Method Not Allowed"}


def test_metrics_report_the_queue_in_prometheus_text_and_json(http):
    r = http.post("/runs/wait", json={"assistant_id": "echo", "input": {"messages": []}})
    assert r.status_code == 200
    text = http.get("/metrics")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    lines = dict(line.split(" ") for line in text.text.splitlines() if not line.startswith("#"))
    assert float(lines["agent_server_worker_capacity"]) == 10
    assert float(lines["agent_server_pool_max"]) == 30  # two per run slot and ten more
    assert "agent_server_runs_pending" in lines and "agent_server_pool_size" in lines
    data = http.get("/metrics", params={"format": "json"}).json()
    assert data["worker_capacity"] == 10 and data["runs_pending"] >= 0
