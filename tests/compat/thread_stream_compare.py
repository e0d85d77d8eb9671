"""Thread event streams side by side (ours vs the official server): the SSE events of a few scenarios, masked
and compared with ../shared/tools/compare.py's mask/diff. compare.py itself reads an SSE answer to its end, and
a thread event stream never ends (the client leaves), so this reads each stream up to the run's end.

    python tests/compat/thread_stream_compare.py --a http://127.0.0.1:PORT --b http://127.0.0.1:OFFICIAL [--tools DIR]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import threading
from pathlib import Path

import httpx

HI = {"messages": [{"role": "user", "content": "hi"}]}
# name -> (stream request, steps); a step is ("command", method, params) or ("runs", path suffix, body)
SCENARIOS = {
    "echo run.start": ({"channels": ["values", "lifecycle", "input"]}, [("command", "run.start", {"assistant_id": "echo", "input": HI})]),
    "interrupt run.start": ({"channels": ["values", "lifecycle", "input"]}, [("command", "run.start", {"assistant_id": "interrupt", "input": {"topic": "cats"}})]),
    "interrupt answered": ({"channels": ["values", "lifecycle", "input"]}, [
        ("command", "run.start", {"assistant_id": "interrupt", "input": {"topic": "cats"}}),
        ("command", "input.respond", {"interrupt_id": "{interrupt}", "namespace": [], "response": True})]),
    "runs/wait (values)": ({"channels": ["values", "updates", "lifecycle"]}, [("runs", "/runs/wait", {"assistant_id": "echo", "input": HI})]),
    "runs (updates)": ({"channels": ["values", "updates", "lifecycle"]}, [("runs", "/runs/wait", {"assistant_id": "echo", "input": HI, "stream_mode": ["updates"]})]),
    "filter lifecycle only": ({"channels": ["lifecycle"]}, [("command", "run.start", {"assistant_id": "echo", "input": HI})]),
}


def _ended(events: list[dict], runs: int) -> bool:
    ends = [e for e in events if e["method"] == "lifecycle" and not e["params"]["namespace"]
            and e["params"]["data"]["event"] in ("completed", "failed", "interrupted")]
    return len(ends) >= runs


def scenario(base: str, body: dict, steps: list) -> list[dict]:
    with httpx.Client(base_url=base, timeout=30) as http:
        thread_id = http.post("/threads", json={}).json()["thread_id"]
        events: list[dict] = []
        opened, changed = threading.Event(), threading.Condition()

        def read():
            with httpx.Client(base_url=base, timeout=30) as h, h.stream("POST", f"/threads/{thread_id}/stream/events", json=body) as r:
                opened.set()
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        with changed:
                            events.append(json.loads(line[5:]))
                            changed.notify_all()

        threading.Thread(target=read, daemon=True).start()
        opened.wait(10)
        answers = []
        for i, (kind, what, params) in enumerate(steps, 1):
            with changed:  # the step before has ended (or stopped on an interrupt)
                changed.wait_for(lambda: _ended(events, i - 1), 20)
            if kind == "command":
                text = json.dumps(params).replace("{interrupt}", next(
                    (e["params"]["data"]["interrupt_id"] for e in events if e["method"] == "input.requested"), ""))
                answers.append(http.post(f"/threads/{thread_id}/commands", json={"id": i, "method": what, "params": json.loads(text)}).json())
            else:
                answers.append(http.post(f"/threads/{thread_id}{what}", json=params).status_code)
        with changed:
            changed.wait_for(lambda: _ended(events, len(steps)), 20)
            return [{"answers": answers}, *events]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--tools", default=str(Path(__file__).resolve().parents[3] / "shared" / "tools"))
    args = p.parse_args()
    spec = importlib.util.spec_from_file_location("compare", Path(args.tools) / "compare.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    differing = 0
    for name, (body, steps) in SCENARIOS.items():
        a, b = scenario(args.a, body, steps), scenario(args.b, body, steps)
        for events in (a, b):  # numbers and ids are each server's own
            for e in events[1:]:
                e.pop("event_id", None)
                e["params"].pop("timestamp", None)
        found = compare.diff(compare.mask(a), compare.mask(b))
        print(("DIFF " if found else "same ") + name)
        if found:
            differing += 1
            print("    ours:    ", [(e["method"], e["params"]["data"].get("event")) if e["method"] == "lifecycle" else e["method"] for e in a[1:]])
            print("    official:", [(e["method"], e["params"]["data"].get("event")) if e["method"] == "lifecycle" else e["method"] for e in b[1:]])
            for line in found[:15]:
                print("   ", line)
    print(f"{len(SCENARIOS) - differing}/{len(SCENARIOS)} scenarios streamed the same")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
