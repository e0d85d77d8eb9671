"""Bad requests answered at the door, briefly: numbers JSON cannot carry, bodies that are not JSON,
values the response cannot encode."""
from __future__ import annotations

import pytest

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
def test_a_non_finite_number_in_metadata_is_rejected(http, number):
    r = http.post("/threads", content=b'{"metadata": {"k": ' + number + b"}}", headers=JSON)
    assert r.status_code == 422, r.text
    assert number.lstrip(b"-").decode() in r.json()["detail"]


def test_a_non_finite_number_deep_in_run_input_or_config_is_rejected(http):
    thread = http.post("/threads", json={}).json()
    for body in (
        b'{"assistant_id": "echo", "input": {"messages": [{"role": "user", "content": "hi", "x": [1, NaN]}]}}',
        b'{"assistant_id": "echo", "input": {}, "config": {"configurable": {"t": Infinity}}}',
    ):
        r = http.post(f"/threads/{thread['thread_id']}/runs/wait", content=body, headers=JSON)
        assert r.status_code == 422, r.text
    r = http.post(f"/threads/{thread['thread_id']}/state", content=b'{"values": {"messages": -Infinity}}', headers=JSON)
    assert r.status_code == 422, r.text
    # the words inside strings, and exponents within range, are fine
    r = http.post("/threads", content=b'{"metadata": {"k": "NaN Infinity 1e400", "n": 1e300, "m": 2E-5}}', headers=JSON)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"] == {"k": "NaN Infinity 1e400", "n": 1e300, "m": 2e-5}


def test_a_body_that_is_not_json_is_answered_briefly(http):
    big = b"x" * (5 * 1024 * 1024)
    r = http.post("/threads", content=big, headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert len(r.content) < 500
    assert "application/json" in r.json()["detail"]


def test_a_huge_wrong_value_is_not_echoed_whole(http):
    r = http.post("/threads", json={"metadata": "y" * 1_000_000})
    assert r.status_code == 422
    assert len(r.content) < 2000
    assert 'is not of type "object"' in r.json()["detail"]


def test_values_json_cannot_carry_are_still_bad_input(http):
    r = http.post("/threads", json={"metadata": {"k": 2**70}})
    assert r.status_code == 422
    assert "Invalid value" in r.json()["detail"]
    r = http.post("/threads", content=b'{"metadata": {"k": "\\udc00"}}', headers=JSON)
    assert r.status_code == 422
