"""langgraph.json as LangGraph users write it, served: `agent-server dev` with an env file, local
dependencies and keys it does not know."""
from __future__ import annotations

import json
from pathlib import Path

import httpx

from conftest import ServerProcess

GRAPH = "from langgraph.graph import START, MessagesState, StateGraph\n"


def write_config(folder: Path, **raw) -> Path:
    path = folder / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"g": "./g.py:graph"}, **raw}))
    return path


def test_server_starts_with_env_file_local_dependencies_and_unknown_keys(tmp_path, database_uri):
    """The graph imports a local dependency (src layout) and reads the env file at import time."""
    pkg = tmp_path / "deps" / "helper" / "src" / "helper_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("PREFIX = 'dep'\n")
    (tmp_path / ".env").write_text("NODE_SUFFIX=from_env\n")
    (tmp_path / "g.py").write_text(
        GRAPH + "import os\nfrom helper_pkg import PREFIX\n"
        "name = f\"{PREFIX}_{os.environ['NODE_SUFFIX']}\"\n"
        "graph = StateGraph(MessagesState).add_node(name, lambda s: {}).add_edge(START, name).compile()\n"
    )
    config = write_config(tmp_path, env=".env", dependencies=["./deps/helper"], mystery=True, python_version="3.11")
    server = ServerProcess(config, env={"DATABASE_URI": database_uri})
    try:
        server.wait_ready()
        nodes = [n["id"] for n in httpx.get(f"{server.url}/assistants/g/graph").json()["nodes"]]
        assert "dep_from_env" in nodes
        assert "'mystery'" in server.output() and "python_version" not in server.output()
    finally:
        server.stop()
