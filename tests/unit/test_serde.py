"""serde.dumps, the JSON of every event and answer: numpy arrays as lists, without loading numpy into a process
whose graphs never do (orjson's numpy option imports it on the first object it does not know). Each case in a
process of its own: this test process may have loaded numpy already."""
from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_a_langchain_message_is_serialized_without_loading_numpy():
    out = _run(
        "import sys; from agent_server.serde import dumps; from langchain_core.messages import AIMessageChunk; "
        "data = dumps(AIMessageChunk(content='hi')); import orjson; "
        "print(orjson.loads(data)['content'], orjson.loads(data)['type'], 'numpy' in sys.modules)"
    )
    assert out == "hi AIMessageChunk False"


def test_numpy_values_are_lists_once_a_graph_has_loaded_numpy():
    out = _run(
        "from agent_server.serde import dumps; import numpy; "
        "print(dumps({'v': numpy.array([[1, 2], [3, 4]]), 'x': numpy.float64(0.5)}).decode())"
    )
    assert out == '{"v":[[1,2],[3,4]],"x":0.5}'
