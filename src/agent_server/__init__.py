"""Agent Server: an open-source, self-hosted server for LangGraph graphs."""

__version__ = "0.1.0"
