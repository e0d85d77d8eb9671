"""The webhook outbox: a run's webhook is recorded in the transaction that ends the run, then claimed,
delivered and deleted (or retried later) by any process running the queue. At least once: a row is
deleted only after its delivery, and a claim is a lease, so a deliverer that dies leaves it due again."""
from __future__ import annotations

from uuid import UUID

from ..status import RunStatus
from .base import Repository, jsonb

# The payload as the official server sends it: the run, how it ended, its thread's values, its error.
# `webhook_sent_at` is added when it is sent.
_PAYLOAD = """jsonb_build_object(
    'run_id', r.run_id, 'thread_id', r.thread_id, 'assistant_id', r.assistant_id, 'metadata', r.metadata,
    'status', %(status)s::text, 'kwargs', r.kwargs, 'multitask_strategy', r.multitask_strategy,
    'created_at', r.created_at, 'updated_at', now(), 'langsmith_session_name', NULL,
    'run_started_at', r.started_at, 'run_ended_at', now(), 'values', coalesce(%(values)s::jsonb, t."values"))
    || CASE WHEN %(error)s::jsonb IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('error', %(error)s::jsonb) END"""


async def record(conn, run_ids: list[UUID], status: RunStatus, error: dict | None = None, values=None) -> None:
    """Queue the webhooks of these runs (those created with one), which end now with `status`, with these
    `values` (None: their thread's). Called inside the transaction that ends them, while their rows exist."""
    if not run_ids:
        return
    await conn.execute(
        f"""INSERT INTO webhook_outbox (run_id, url, payload)
            SELECT r.run_id, r.kwargs->>'webhook', {_PAYLOAD}
            FROM run r LEFT JOIN thread t ON t.thread_id = r.thread_id
            WHERE r.run_id = ANY(%(runs)s) AND coalesce(r.kwargs->>'webhook', '') <> ''""",
        {
            "runs": run_ids, "status": status, "error": jsonb(error) if error is not None else None,
            "values": jsonb(values) if values is not None else None,
        },
    )


class WebhookRepo(Repository):
    async def claim(self, limit: int, lease_seconds: float) -> list[dict]:
        """Up to `limit` due deliveries, each leased for `lease_seconds` (its `attempts` counts this one)."""
        return await self.all(
            """UPDATE webhook_outbox SET attempts = attempts + 1,
                   available_at = now() + %(lease)s * interval '1 second'
               WHERE id IN (SELECT id FROM webhook_outbox WHERE available_at <= now()
                            ORDER BY available_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
               RETURNING id, run_id, url, payload, attempts""",
            {"limit": limit, "lease": lease_seconds},
        )

    async def done(self, row: dict) -> None:
        """Delivered, or given up on."""
        await self.execute("DELETE FROM webhook_outbox WHERE id = %s", (row["id"],))

    async def retry(self, row: dict, delay_seconds: float) -> None:
        """Due again after `delay_seconds`; unless another deliverer has claimed it since (our lease ran out)."""
        await self.execute(
            """UPDATE webhook_outbox SET available_at = now() + %s * interval '1 second'
               WHERE id = %s AND attempts = %s""",
            (delay_seconds, row["id"], row["attempts"]),
        )

    async def next_due_in(self) -> float | None:
        """Seconds until the next delivery is due (None when none waits)."""
        # not greatest(..., 0) in SQL: greatest skips a NULL, and an empty outbox would be due at once
        due = await self.scalar("SELECT extract(epoch FROM min(available_at) - now())::float FROM webhook_outbox")
        return None if due is None else max(due, 0.0)
