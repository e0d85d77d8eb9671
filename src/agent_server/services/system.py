"""The server's own health and figures, for probes and monitoring."""
from __future__ import annotations

from prometheus_client import generate_latest

from ..observability import REGISTRY
from ..storage import database


async def check_database(rt) -> None:
    """A round trip to PostgreSQL (raises when it does not answer)."""
    await database.ping(rt.pool)


async def metrics(rt, worker=None) -> dict[str, float]:
    """Queue depth, runs by status, this process's active runs, its connection pool and its open broker
    subscriptions (streams, waiters and the queue's own)."""
    pool = rt.pool.get_stats()
    return {
        **await rt.runs.queue_stats(),
        "worker_active_runs": float(len(worker.active) if worker else 0),
        "worker_capacity": float(worker.concurrency if worker else 0),
        "pool_size": float(pool.get("pool_size", 0)),
        "pool_max": float(rt.pool.max_size),  # what it may grow to (LANGGRAPH_POSTGRES_POOL_MAX_SIZE, or from the slots)
        "pool_available": float(pool.get("pool_available", 0)),
        "pool_requests_waiting": float(pool.get("requests_waiting", 0)),
        "broker_subscriptions": float(rt.broker.subscription_count),
    }


def persistence(rt) -> dict:
    """Where checkpoints and the store live, and what this server does with the saver's checkpoints: each
    capability "sql" (ours), "saver" (its own method), "reinsert" (a fallback through its required methods),
    "estimate" (the storage report's sizes from its serializer), or false (off; rollback then answers 422)."""
    return {
        "checkpointer": {
            "backend": rt.settings.checkpointer.get("backend", "default"),
            "class": type(rt.checkpointer).__name__,
            "capabilities": rt.checkpoints.capabilities,
        },
        "store": {"backend": "custom" if rt.settings.store.get("path") else "default", "class": type(rt.store).__name__},
    }


def prometheus_text(stats: dict[str, float]) -> str:
    """The figures above as gauges, after this process's own metrics (observability.REGISTRY)."""
    gauges = "".join(f"# TYPE agent_server_{name} gauge\nagent_server_{name} {value:g}\n" for name, value in stats.items())
    return generate_latest(REGISTRY).decode() + gauges
