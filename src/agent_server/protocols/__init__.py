"""Other protocols over the same services as the HTTP API: MCP (each assistant a tool) and A2A (each
assistant with a `messages` key an agent). The logic here takes the caller's Context and a parsed
JSON-RPC message and answers one; api/mcp.py and api/a2a.py only carry it over HTTP."""
