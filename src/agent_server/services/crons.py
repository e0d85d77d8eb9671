"""Cron jobs: a run payload queued on a schedule, on a thread or each time on a new one; and their firing.

Every process that runs the queue fires due crons (worker/consumer.py). Each firing is claimed in one
transaction that queues the run and moves the cron to its next tick (storage/crons.py claim_due): a
firing is one run, however many schedulers look at once. A scheduler that was down fires a cron once for
the ticks it missed: the next tick is the first one after the database's clock."""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from langgraph.checkpoint.base.id import uuid6

from ..errors import BOTH_CONFIGURABLE_AND_CONTEXT, AgentServerError, BadRequest, Invalid
from ..runtime import Runtime
from . import SYSTEM, Context
from . import runs, threads

log = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 1.0  # how long a scheduler sleeps at most: a new cron due sooner waits no longer than this


def next_run_date(schedule: str, after: datetime, timezone: str | None) -> datetime:
    """The schedule's first tick after `after`, in `timezone` (None: UTC)."""
    local = after.astimezone(ZoneInfo(timezone) if timezone else UTC)
    return croniter(schedule, local).get_next(datetime).astimezone(UTC)


def first_run_date(schedule: str, timezone: str | None) -> datetime:
    """The schedule's next tick from now; a schedule, or timezone, that is not one is refused (422)."""
    if not croniter.is_valid(schedule):
        raise Invalid(
            f"Invalid cron schedule: '{schedule}'. Ensure the schedule uses the standard cron format (minute hour "
            "day_of_month month day_of_week), optionally with a sixth field of seconds. Example: '*/5 * * * *' for "
            "every 5 minutes."
        )
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid(f"Invalid timezone: '{timezone}'. Use IANA timezone format (e.g. 'America/New_York').") from None
    try:
        return next_run_date(schedule, datetime.now(UTC), timezone)
    except CroniterBadDateError:  # valid fields, no date (February 30th)
        raise Invalid(f"Invalid cron schedule: '{schedule}' never comes.") from None


async def _check_payload(rt: Runtime, assistant: dict, payload: dict) -> None:
    """What run creation would refuse at each firing is refused now."""
    await runs.check_webhook(rt, payload.get("webhook"))
    if payload.get("context") and {k for k in (payload.get("config") or {}).get("configurable") or {} if k != "cron_id"}:
        raise BadRequest(BOTH_CONFIGURABLE_AND_CONTEXT)
    await runs.check_interrupt_nodes(rt, assistant, payload)


def _with_cron_id(payload: dict, cron_id: UUID) -> dict:
    """As the official server stores it: the cron's id in the payload's configurable."""
    config = payload.get("config") or {}
    return {**payload, "config": {**config, "configurable": {**(config.get("configurable") or {}), "cron_id": str(cron_id)}}}


async def create(
    rt: Runtime, ctx: Context, thread_id: UUID | None, assistant_id: UUID, payload: dict, *, schedule: str,
    timezone: str | None, end_time: datetime | None, enabled: bool, on_run_completed: str | None,
) -> dict:
    """A cron on a thread, or (thread_id None) a stateless one: each firing on a new thread, deleted after its
    run unless `on_run_completed` is `keep`. `payload` is the request's, kept to queue each run with."""
    first_run = first_run_date(schedule, timezone)
    cron_id = uuid6()
    asked = {
        "cron_id": cron_id, "thread_id": thread_id, "assistant_id": assistant_id, "schedule": schedule,
        "end_time": end_time, "payload": payload, "metadata": dict(payload.get("metadata") or {}),
        "user_id": runs._identity(ctx.user),
    }
    await ctx.authorize("crons", "create", asked)  # the policy may stamp the metadata (an owner)
    assistant = await rt.assistants.get(assistant_id)
    if thread_id is not None:
        await threads.get(rt, ctx, thread_id)  # another caller's thread: not found
    # the threads its firings create are the creator's, as those of the runs they queue (services/runs.prepare)
    owner = (await threads.allowed(
        ctx, "create_run", thread_id, assistant_id=assistant_id, run_id=None, kwargs=payload,
        metadata=dict(payload.get("metadata") or {}), multitask_strategy=payload.get("multitask_strategy"),
    )).metadata
    await _check_payload(rt, assistant, payload)
    return await rt.crons.create(
        cron_id, assistant_id=assistant_id, thread_id=thread_id, user_id=asked["user_id"], schedule=schedule,
        timezone=timezone, payload=_with_cron_id({**payload, "assistant_id": str(assistant_id)}, cron_id),
        metadata=asked["metadata"], on_run_completed=None if thread_id else on_run_completed or "delete",
        enabled=enabled, end_time=end_time, next_run_date=first_run,
        owner=owner,
    )


async def get(rt: Runtime, ctx: Context, cron_id: UUID) -> dict:
    visible = await ctx.authorize("crons", "read", {"cron_id": cron_id})
    return await rt.crons.get(cron_id, filter=visible)


async def search(rt: Runtime, ctx: Context, **query) -> list[dict]:
    visible = await ctx.authorize("crons", "search", query)
    return await rt.crons.search(**query, filter=visible)


async def count(rt: Runtime, ctx: Context, **query) -> int:
    visible = await ctx.authorize("crons", "search", query)
    return await rt.crons.count(**query, filter=visible)


async def delete(rt: Runtime, ctx: Context, cron_id: UUID) -> None:
    visible = await ctx.authorize("crons", "delete", {"cron_id": cron_id})
    await rt.crons.delete(cron_id, filter=visible)


CRON_KEYS = {"schedule", "timezone", "end_time", "enabled", "on_run_completed", "metadata"}  # the cron's own


async def update(rt: Runtime, ctx: Context, cron_id: UUID, changes: dict) -> dict:
    """`changes`: the fields given (`end_time: None` clears it). The payload takes every one of them (the run's
    fields replace, as the official server merges); metadata merges. A new schedule or timezone, or enabling
    the cron, moves its next run to the first tick from now: ticks missed meanwhile are not fired."""
    if not changes:
        raise BadRequest("Request body cannot be empty")
    if "schedule" in changes or "timezone" in changes:
        first_run_date(changes.get("schedule") or "* * * * *", changes.get("timezone"))
    await runs.check_webhook(rt, changes.get("webhook"))
    asked = {"cron_id": cron_id, **changes, "metadata": dict(changes.get("metadata") or {})}
    visible = await ctx.authorize("crons", "update", asked)
    changes = {**changes, "metadata": asked["metadata"]} if "metadata" in changes else changes

    def change(row: dict) -> dict:
        values = {key: changes[key] for key in CRON_KEYS - {"metadata"} if key in changes}
        if "metadata" in changes:
            values["metadata"] = {**row["metadata"], **changes["metadata"]}
        if row["thread_id"] is not None:
            values.pop("on_run_completed", None)  # a thread's cron keeps its thread
        payload = {**row["payload"], **changes, "assistant_id": row["payload"].get("assistant_id")}
        values["payload"] = _with_cron_id(payload, cron_id)
        schedule, timezone = values.get("schedule", row["schedule"]), values.get("timezone", row["timezone"])
        if {"schedule", "timezone"} & values.keys() or (values.get("enabled") and not row["enabled"]):
            values["next_run_date"] = first_run_date(schedule, timezone)
        return values

    return await rt.crons.update(cron_id, change, filter=visible)


# ---- firing ---------------------------------------------------------------------------------------

def _run_payload(cron: dict) -> dict:
    """The payload of a firing's run: the cron's, with the cron's metadata under the payload's own."""
    payload = dict(cron["payload"])
    config = payload.get("config") or {}
    # the cron's id goes into the run's configurable past the configurable/context check (see _fire)
    payload["config"] = {**config, "configurable": {
        k: v for k, v in (config.get("configurable") or {}).items() if k != "cron_id"
    }}
    payload["metadata"] = {**(cron["metadata"] or {}), **(payload.get("metadata") or {})}
    if cron["thread_id"] is None:
        payload["on_completion"] = cron["on_run_completed"] or "delete"
    return payload


async def fire_due(rt: Runtime) -> float:
    """Fire every cron due now, each once. Returns how long to wait before looking again: until the next
    cron is due, at most MAX_WAIT_SECONDS."""
    passed: list[UUID] = []  # claimed in this round (fired, or left for the next round)
    while (cron_id := await _fire_one(rt, passed)) is not None:
        passed.append(cron_id)
    due_in = await rt.crons.next_due_in()
    return MAX_WAIT_SECONDS if due_in is None else min(MAX_WAIT_SECONDS, max(due_in, 0.05))


async def _fire_one(rt: Runtime, passed: list[UUID]) -> UUID | None:
    """Claim one due cron and queue its run; returns its id (None: nothing was due)."""
    async with rt.crons.claim_due(passed) as claim:
        if claim is None:
            return None
        cron = claim.cron
        if not claim.ready:
            return cron["cron_id"]  # its thread is busy in another transaction: the next round
        new = created = None
        try:
            # the rules of any run; the caller is the server itself (the cron keeps its creator's user_id)
            new = await runs.prepare(rt, SYSTEM, cron["thread_id"], cron["assistant_id"], _run_payload(cron))
            new.kwargs["config"]["configurable"]["cron_id"] = str(cron["cron_id"])
            new.owner = cron["owner"]  # fired by the server, on behalf of the cron's creator
            created = await rt.runs.create(new, claim.conn)  # a savepoint: refused, the claim still commits
        except AgentServerError as exc:  # a busy thread with multitask_strategy reject; a graph that changed
            log.warning("cron %s: no run for this firing: %s", cron["cron_id"], exc.detail)
        await rt.crons.advance(claim, next_run_date(cron["schedule"], cron["now"], cron["timezone"]))
    if created is not None:
        log.info("cron %s: queued run %s on thread %s", cron["cron_id"], new.run_id, new.thread_id)
        await runs.announce(rt, new, created)
    return cron["cron_id"]
