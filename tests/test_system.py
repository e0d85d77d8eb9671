def test_ok_answers(http):
    assert http.get("/ok").json() == {"ok": True}


def test_info_reports_version_and_flags(http):
    info = http.get("/info").json()
    assert info["version"]
    assert "flags" in info


def test_openapi_lists_resource_routes(http):
    paths = http.get("/openapi.json").json()["paths"]
    for path in ("/assistants/search", "/threads", "/threads/{thread_id}/runs/stream", "/runs/wait"):
        assert path in paths


def test_docs_page_is_served(http):
    r = http.get("/docs")
    assert r.status_code == 200 and "html" in r.headers["content-type"]
