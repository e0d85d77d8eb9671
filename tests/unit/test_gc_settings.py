"""A server process settles CPython's garbage collector once started (cli.settle_gc): what is alive then is frozen
out of later collections, and the young generation is collected every 50,000 allocations (bench/RESULTS.md says
why). Checked in a process of its own: freezing this test process would keep its garbage for good."""
from __future__ import annotations

import subprocess
import sys


def test_a_settled_process_has_frozen_its_start_and_collects_its_young_generation_less_often():
    code = (
        "import gc; from agent_server.cli import settle_gc; before = gc.get_freeze_count(); settle_gc(); "
        "print(before, gc.get_freeze_count() > 10_000, gc.get_threshold())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip().split(maxsplit=2)
    assert out == ["0", "True", "(50000, 20, 10)"]
