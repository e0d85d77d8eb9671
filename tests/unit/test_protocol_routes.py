"""The disable_mcp / disable_a2a switches of the http section remove every route of their protocol."""
from agent_server.api import a2a, http_config, mcp


def paths(router) -> set[str]:
    return {route.path for route in router.routes}


def test_each_switch_removes_its_protocols_routes_and_only_those():
    assert paths(mcp.router) == {"/mcp", "/mcp/"}
    assert "/.well-known/agent-card.json" in paths(a2a.router)
    assert http_config.served(mcp.router, {"disable_mcp": True}).routes == []
    assert http_config.served(a2a.router, {"disable_a2a": True}).routes == []
    assert paths(http_config.served(mcp.router, {"disable_a2a": True})) == paths(mcp.router)
    assert paths(http_config.served(a2a.router, {"disable_mcp": True})) == paths(a2a.router)
