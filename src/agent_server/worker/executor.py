"""Execute one claimed run: build its config, stream its graph, record how it ended."""
from __future__ import annotations

import asyncio
import logging
from importlib.metadata import version
from typing import Any

import psycopg
from langgraph.errors import GraphInterrupt
from langgraph.types import Command

from ..broker import DONE, pack, run_channel
from ..runtime import Runtime
from ..serde import dumps, to_jsonable
from ..state import interrupts_by_task
from .stream import RunStream

log = logging.getLogger(__name__)
LANGGRAPH_VERSION = version("langgraph")
# how a cancelled run leaves its thread (status, error name, verb of the message), as the official server
CANCELLED = {"interrupted": ("interrupted", "UserInterrupt", "interrupt"), "rollback": ("idle", "UserRollback", "rollback")}

def run_config(run: dict) -> dict:
    """The config recorded at creation, plus what only the execution knows (the attempt)."""
    config = dict(run["kwargs"]["config"])
    config.setdefault("run_name", config["configurable"]["graph_id"])  # names the root in events and traces
    config["metadata"] = {
        **(config.get("metadata") or {}),
        "run_attempt": run["attempt"],
        "langgraph_version": LANGGRAPH_VERSION,
        "langgraph_host": "self-hosted",
        "thread_id": str(run["thread_id"]),
        "run_id": str(run["run_id"]),
    }
    return config


def graph_input(kwargs: dict) -> Any:
    command = kwargs.get("command")
    if command:
        goto = command.get("goto")
        return Command(resume=command.get("resume"), update=command.get("update"), goto=goto or ())
    return kwargs.get("input")


async def execute(rt: Runtime, run: dict, cancel_reason: dict) -> None:
    """Run to the end. `cancel_reason[run_id]` says why, when the task gets cancelled."""
    run_id, thread_id, kwargs = run["run_id"], run["thread_id"], run["kwargs"]
    channel = run_channel(run_id)

    resumable = kwargs.get("resumable", False)
    seq = -1  # resumable runs number their events and store them: a client can reconnect from an id

    async def publish(event: str, data: bytes) -> None:
        nonlocal seq
        if not resumable or event == DONE:
            await rt.broker.publish(channel, pack(event, data))
            return
        seq += 1
        await rt.events.append(run_id, seq, event, data)
        await rt.broker.publish(channel, pack(event, data, str(seq)))

    status, error, graph, stream = "success", None, None, None
    try:
        async with asyncio.timeout(rt.settings.bg_job_timeout_secs):
            if resumable:
                seq = await rt.events.last_seq(run_id)  # a retried run continues the numbering
            await publish("metadata", dumps({"run_id": str(run_id), "attempt": run["attempt"]}))
            config = run_config(run)
            graph_id = config["configurable"]["graph_id"]
            # A temporary thread dies with its run: no checkpoints, as the official server does.
            checkpointer = None if kwargs.get("temporary") else rt.checkpointer
            graph = await rt.graphs.get(graph_id, config, checkpointer=checkpointer, store=rt.store)
            stream = RunStream(kwargs["stream_mode"], kwargs["subgraphs"])
            extra = {
                "interrupt_before": kwargs.get("interrupt_before"),
                "interrupt_after": kwargs.get("interrupt_after"),
                "durability": kwargs.get("durability") or "async",
            }
            if kwargs.get("context"):
                extra["context"] = kwargs["context"]
            value = await _input_for_attempt(rt, graph, config, run)
            async for event, data in stream.events(graph, value, config, **extra):
                await publish(event, data)
    except asyncio.CancelledError:
        asyncio.current_task().uncancel()
        status = "rollback" if cancel_reason.get(run_id) == "rollback" else "interrupted"
        if cancel_reason.get(run_id) == "release":
            await rt.runs.release(run_id, thread_id, run["lease_owner"])
            return
    except TimeoutError:
        status, error = "timeout", {"error": "TimeoutError", "message": "Run exceeded BG_JOB_TIMEOUT_SECS"}
    except GraphInterrupt:  # interrupt() outside a node's normal flow still leaves a resumable state
        pass
    except psycopg.OperationalError as exc:  # the database went away: the run is not at fault
        log.warning("run %s: database unavailable (%s); handing it back to resume later", run_id, exc)
        try:
            await rt.runs.release(run_id, thread_id, run["lease_owner"])
        except psycopg.Error:
            pass  # still down: its lease expires and the sweep requeues it
        return
    except Exception as exc:
        log.exception("run %s failed", run_id)
        status, error = "error", {"error": type(exc).__name__, "message": str(exc)}
    finally:
        cancel_reason.pop(run_id, None)
    if error is not None:
        await publish("error", dumps(error))
    result = await _finish(rt, run, status, error, graph, stream)
    if result is not None:
        await publish(DONE, dumps(result))


async def _input_for_attempt(rt: Runtime, graph, config: dict, run: dict) -> Any:
    """A retried run resumes from its last checkpoint instead of starting over."""
    if run["attempt"] > 1:
        latest = await rt.checkpointer.aget_tuple({"configurable": {"thread_id": str(run["thread_id"]), "checkpoint_ns": ""}})
        if latest and (latest.metadata or {}).get("run_id") == str(run["run_id"]):
            log.info("run %s attempt %s resumes from checkpoint %s", run["run_id"], run["attempt"], latest.config["configurable"]["checkpoint_id"])
            return None
    return graph_input(run["kwargs"])


async def _finish(rt: Runtime, run: dict, status: str, error: dict | None, graph, stream: RunStream | None) -> dict | None:
    run_id, thread_id, kwargs = run["run_id"], run["thread_id"], run["kwargs"]
    values, interrupts, pending = None, None, None
    thread_status = {"error": "error", "timeout": "error"}.get(status)
    thread_error = error
    if status in CANCELLED:
        thread_status, name, verb = CANCELLED[status]
        thread_error = {"error": name, "message": f"{verb} requested via POST /threads/{{thread_id}}/runs/{{run_id}}/cancel"}
    if status == "rollback":
        await rt.threads.delete_run_checkpoints(thread_id, run_id)
    if kwargs.get("temporary"):
        values = to_jsonable(stream.last_values) if stream else None  # carries __interrupt__ already
    elif graph is not None:
        try:
            snapshot = await graph.aget_state({"configurable": {"thread_id": str(thread_id)}})
            values, interrupts = to_jsonable(snapshot.values), interrupts_by_task(snapshot)
            if (snapshot.next or snapshot.interrupts) and status == "success":  # stopped before its end
                thread_status = "interrupted"
                pending = to_jsonable(list(snapshot.interrupts))
        except Exception:
            log.exception("run %s: could not read the final state", run_id)
    if error:
        output = {"__error__": error}
    elif pending and isinstance(values, dict):  # as the official server: the values, plus what waits for an answer
        output = {**values, "__interrupt__": pending}
    else:
        output = values
    held = await rt.runs.finish(
        run_id, thread_id, run["lease_owner"],
        status="interrupted" if status == "rollback" else status,
        output=output,
        thread_status=thread_status,
        values=values,
        interrupts=interrupts,
        error=thread_error,
        rollback=status == "rollback",
        delete_thread=kwargs.get("temporary", False),
    )
    if not held:
        log.warning("run %s: lease lost to another worker; its outcome here is dropped", run_id)
        return None
    log.info("run %s on thread %s ended: %s", run_id, thread_id, status)
    return {"status": status, "output": output}
