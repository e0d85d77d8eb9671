"""stream_resumable: a client that reconnects with Last-Event-ID misses no event."""
from __future__ import annotations

import json

import httpx


def _sse(text: str) -> list[dict]:
    events, current = [], {}
    for line in text.splitlines():
        if not line:
            if current:
                events.append(current)
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            current[key] = value
    return events


async def test_reconnecting_with_last_event_id_replays_missed_events_then_live_ones(client, server):
    thread = await client.threads.create()
    seen = []
    stream = client.runs.stream(
        thread["thread_id"], "slow", input={}, stream_mode="updates", stream_resumable=True,
        config={"configurable": {"delay": 0.2}},
    )
    async for part in stream:
        seen.append(part)
        if len(seen) == 3:  # metadata + two updates, then the client drops
            break
    await stream.aclose()
    run_id = seen[0].data["run_id"]
    last_id = seen[-1].id
    assert last_id is not None

    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.get(
            f"/threads/{thread['thread_id']}/runs/{run_id}/stream", headers={"Last-Event-ID": last_id}
        )
    rest = _sse(r.text)
    ids = [int(p.id) for p in seen] + [int(e["id"]) for e in rest]
    assert ids == list(range(len(ids))), "every event once, in order"
    steps = [next(iter(e.data)) for e in seen[1:]] + [next(iter(json.loads(e["data"]))) for e in rest]
    assert steps == [f"step{i}" for i in range(1, 6)]


async def test_last_event_id_minus_one_replays_a_finished_resumable_run_from_the_start(client, http):
    thread = await client.threads.create()
    run = await client.runs.create(
        thread["thread_id"], "echo", input={"messages": [{"role": "user", "content": "x"}]},
        stream_resumable=True, stream_mode="updates",
    )
    await client.runs.join(thread["thread_id"], run["run_id"])
    r = http.get(f"/threads/{thread['thread_id']}/runs/{run['run_id']}/stream", headers={"Last-Event-ID": "-1"})
    events = _sse(r.text)
    assert [e["event"] for e in events] == ["metadata", "updates"]
    assert [e["id"] for e in events] == ["0", "1"]


async def test_streams_of_runs_that_are_not_resumable_carry_no_event_ids(client, http):
    r = http.post("/runs/stream", json={"assistant_id": "echo", "input": {"messages": []}, "stream_mode": "updates"})
    assert r.status_code == 200
    assert all("id" not in e for e in _sse(r.text))


async def test_a_join_with_stream_modes_gets_only_those_modes_events(client, http):
    """join_stream(stream_mode=...) as the official server answers it: only the events of the modes asked for
    (both messages modes are `messages` events), not the run's metadata; replayed and live alike."""
    thread = await client.threads.create()
    run = await client.runs.create(
        thread["thread_id"], "slow", input={}, stream_mode=["values", "updates"], stream_resumable=True,
        config={"configurable": {"delay": 0.1}},
    )
    live = [part.event async for part in client.runs.join_stream(thread["thread_id"], run["run_id"], stream_mode="updates")]
    assert live and set(live) == {"updates"}
    path = f"/threads/{thread['thread_id']}/runs/{run['run_id']}/stream"
    replayed = _sse(http.get(path, params={"stream_mode": "updates"}, headers={"Last-Event-ID": "-1"}).text)
    assert [e["event"] for e in replayed] == ["updates"] * 5
    both = _sse(http.get(path, params=[("stream_mode", "values"), ("stream_mode", "updates")],
                         headers={"Last-Event-ID": "-1"}).text)
    assert [e["event"] for e in both] == ["updates", "values"] * 5  # as the run streamed them, in order
    everything = ["metadata"] + ["updates", "values"] * 5
    assert [e["event"] for e in _sse(http.get(path, headers={"Last-Event-ID": "-1"}).text)] == everything
    # the SDK's join_stream without stream_mode sends an empty one
    empty = _sse(http.get(path, params={"stream_mode": ""}, headers={"Last-Event-ID": "-1"}).text)
    assert [e["event"] for e in empty] == everything
    assert http.get(path, params={"stream_mode": "bogus"}).status_code == 422

    chat = await client.runs.create(
        thread["thread_id"], "chat", input={"messages": [{"role": "user", "content": "hi"}]},
        stream_mode=["messages-tuple", "updates"], stream_resumable=True,
    )
    await client.runs.join(thread["thread_id"], chat["run_id"])
    path = f"/threads/{thread['thread_id']}/runs/{chat['run_id']}/stream"
    for mode in ("messages-tuple", "messages"):
        events = _sse(http.get(path, params={"stream_mode": mode}, headers={"Last-Event-ID": "-1"}).text)
        assert events and {e["event"] for e in events} == {"messages"}


async def test_a_join_with_stream_modes_passes_over_events_without_heartbeats_and_keeps_errors(client, server):
    """Events of other modes are passed over, not replaced by anything; a run's error reaches every client."""
    thread = await client.threads.create()
    run = await client.runs.create(
        thread["thread_id"], "chat", input={"messages": [{"role": "user", "content": "hi"}]},
        stream_mode=["messages-tuple", "updates"], stream_resumable=True,
    )
    await client.runs.join(thread["thread_id"], run["run_id"])
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.get(f"/threads/{thread['thread_id']}/runs/{run['run_id']}/stream", params={"stream_mode": "updates"},
                     headers={"Last-Event-ID": "-1"})
    assert ": heartbeat" not in r.text and [e["event"] for e in _sse(r.text)] == ["updates"]
    failing = await client.runs.create(thread["thread_id"], "failing", input={"fail": True}, stream_mode="updates",
                                       stream_resumable=True)
    await client.runs.join(thread["thread_id"], failing["run_id"])
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.get(f"/threads/{thread['thread_id']}/runs/{failing['run_id']}/stream",
                     params={"stream_mode": "values"}, headers={"Last-Event-ID": "-1"})
    assert [e["event"] for e in _sse(r.text)] == ["error"]
