"""In a real browser (headless Chromium): a page of another origin calls the API (CORS preflight, a JSON
POST, reading an exposed header), and /docs renders the API's description without internet."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import ServerProcess, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on this machine (.ci/run installs Debian's `chromium` where apt-get works)"
)

PAGE = """<!doctype html><html><body><script>
async function run() {
  const api = %(api)r;
  const report = (result) => fetch("/report?result=" + encodeURIComponent(JSON.stringify(result)));
  try {
    const created = await fetch(api + "/threads", {
      method: "POST", headers: {"content-type": "application/json", "x-custom": "1"},
      body: JSON.stringify({metadata: {from: "browser"}}),
    });
    const thread = await created.json();
    const search = await fetch(api + "/threads/search", {
      method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify({metadata: {from: "browser"}, limit: 1}),
    });
    await report({
      status: created.status, thread_id: thread.thread_id,
      total: search.headers.get("x-pagination-total"), found: (await search.json()).length,
    });
  } catch (e) {
    await report({error: String(e)});
  }
}
run();
</script></body></html>"""


class PageServer:
    """The other origin: serves the page and takes its report."""

    def __init__(self, api: str) -> None:
        self.reports: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlsplit(self.path)
                if url.path == "/report":
                    outer.reports.append(json.loads(parse_qs(url.query)["result"][0]))
                    body = b"ok"
                else:
                    body = (PAGE % {"api": api}).encode()
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def chromium(profile, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )


def page_report(api: str, profile) -> dict:
    """What the page of another origin reports of its calls to `api`."""
    page = PageServer(api)
    browser = chromium(profile, page.url)
    try:
        deadline = time.monotonic() + 60
        while not page.reports and time.monotonic() < deadline and browser.poll() is None:
            time.sleep(0.1)
    finally:
        browser.kill()
        browser.wait()
        page.stop()
    assert page.reports, "the page never reported"
    return page.reports[0]


def test_page_of_another_origin_calls_the_api(server, tmp_path):
    report = page_report(server.url, tmp_path)
    assert "error" not in report, report  # "Failed to fetch" when CORS refuses
    assert report["status"] == 200 and report["thread_id"]
    assert int(report["total"]) >= 1 and report["found"] == 1


def test_page_of_an_origin_cors_does_not_allow_fails_to_fetch(database_uri, tmp_path):
    server = ServerProcess(env={"DATABASE_URI": database_uri, "CORS_CONFIG": '{"allow_origins": ["http://other.test"]}'})
    try:
        report = page_report(server.wait_ready().url, tmp_path)
    finally:
        server.stop()
    assert report == {"error": "TypeError: Failed to fetch"}


def test_docs_render_from_local_assets(server, tmp_path):
    """Swagger UI, loaded from this server only, renders the operations of /openapi.json."""
    browser = chromium(tmp_path, "--dump-dom", "--virtual-time-budget=15000", f"{server.url}/docs")
    try:
        dom, _ = browser.communicate(timeout=90)
    finally:
        browser.kill()
    assert "swagger-ui" in dom and "/threads/search" in dom and "/runs/stream" in dom
