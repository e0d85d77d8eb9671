"""store.path for the tests: langgraph's InMemoryStore (so: one process), told store.ttl when configured."""
import contextlib

from langgraph.store.memory import InMemoryStore


class TestStore(InMemoryStore):
    given_ttl = None


@contextlib.asynccontextmanager
async def store(ttl=None):
    s = TestStore()
    s.given_ttl = ttl
    yield s
