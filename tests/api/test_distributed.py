"""Distributed mode: an API process, an orchestrator (claims, leases, cancels, publishes) and executor processes
(graph code) joined by gRPC; real PostgreSQL and Redis, processes killed, frozen and restarted."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import grpc
import psycopg

from conftest import ServerProcess, free_port
from run_helpers import FINISHED, SLOW, STEPS, new_thread, run_status, slow

SECRET = {"AGENT_SERVER_EXECUTOR_SECRET": "test-secret"}


def add_executors(cluster, n: int, slots: int = 3, env: dict[str, str] | None = None) -> list[ServerProcess]:
    """`n` executor processes started at once, returned when all listen."""
    executors = []
    for _ in range(n):
        port = free_port()
        executor = ServerProcess(
            env={**cluster.env, **SECRET, **(env or {})}, command="executor",
            args=["--host", "127.0.0.1", "--port", str(port), "--slots", str(slots)],
        )
        executor.address = f"127.0.0.1:{port}"
        cluster.workers.append(executor)  # stopped with the cluster
        executors.append(executor)
    return [executor.wait_for_log("listening on") for executor in executors]


def add_executor(cluster, slots: int = 3) -> ServerProcess:
    return add_executors(cluster, 1, slots)[0]


def add_orchestrator(cluster, executors: list[ServerProcess], **env: str) -> ServerProcess:
    args = [arg for e in executors for arg in ("--executor", e.address)]
    orchestrator = ServerProcess(env={**cluster.env, **SECRET, **env}, command="orchestrator", args=args)
    cluster.workers.append(orchestrator)
    for e in executors:
        orchestrator.wait_for_log(f"executor {e.address} (")
    return orchestrator


def distributed(cluster, executors: int = 2, slots: int = 3, **env: str):
    pool = add_executors(cluster, executors, slots)
    return add_orchestrator(cluster, pool, **env), pool


def started_on(executor: ServerProcess) -> int:
    return executor.output().count(" started (attempt ")


async def test_runs_spread_over_the_executors_with_the_events_and_results_of_the_other_modes(cluster):
    orchestrator, executors = distributed(cluster)
    client = cluster.client
    thread_id = await new_thread(client)
    events = [p.event async for p in client.runs.stream(thread_id, SLOW, input={}, stream_mode="updates", config=slow(0.01))]
    assert events == ["metadata", *["updates"] * 5]
    assert (await client.threads.get_state(thread_id))["values"]["steps"] == STEPS

    threads = [await new_thread(client) for _ in range(6)]
    runs = [await client.runs.create(t, SLOW, input={}, config=slow(0.2)) for t in threads]
    results = await asyncio.gather(*(client.runs.join(r["thread_id"], r["run_id"]) for r in runs))
    assert all(result["steps"] == STEPS for result in results)
    assert all(started_on(e) >= 2 for e in executors)  # least busy first: both took their share
    assert " started (attempt " not in orchestrator.output()  # graph code never runs there
    assert "dispatched to executor" in orchestrator.output()


async def test_an_executor_never_runs_more_than_its_slots(cluster):
    _, executors = distributed(cluster, executors=1, slots=2)
    client = cluster.client
    threads = [await new_thread(client) for _ in range(5)]
    runs = [await client.runs.create(t, SLOW, input={}, config=slow(0.1)) for t in threads]
    most = 0
    # One statement reads every status at once: reading them one request at a time could count a run that
    # has just ended and the one that took its slot as both running.
    async with await psycopg.AsyncConnection.connect(cluster.env["DATABASE_URI"], autocommit=True) as conn:
        while True:
            cur = await conn.execute("SELECT status FROM run WHERE run_id = ANY(%s::uuid[])", ([r["run_id"] for r in runs],))
            statuses = [row[0] for row in await cur.fetchall()]
            most = max(most, statuses.count("running"))
            if all(s in FINISHED for s in statuses):
                break
            await asyncio.sleep(0.02)
    assert most == 2 and sorted(statuses) == ["success"] * 5


async def test_a_cancel_reaches_the_executor_within_a_second(cluster):
    distributed(cluster, executors=1)
    client = cluster.client
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, SLOW, input={}, config=slow(5))
    await run_status(client, thread_id, run["run_id"], {"running"})
    await asyncio.sleep(0.3)  # into its first step, on the executor
    began = time.monotonic()
    await client.runs.cancel(thread_id, run["run_id"], wait=True)
    assert time.monotonic() - began < 1.5  # cancel, its arrival and the recording of the end
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "interrupted"
    assert (await client.threads.get(thread_id))["status"] == "interrupted"


async def _spread_then(cluster, executors, victim, stop) -> list[dict]:
    """Runs on both executors; `stop` the victim mid-run (a couple of steps checkpointed); all runs, ended."""
    client = cluster.client
    threads = [await new_thread(client) for _ in range(6)]
    runs = [await client.runs.create(t, SLOW, input={}, config=slow(0.4)) for t in threads]
    deadline = time.monotonic() + 20
    while started_on(victim) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.9)
    stop(victim)
    results = await asyncio.gather(*(client.runs.join(r["thread_id"], r["run_id"]) for r in runs))
    assert all(result["steps"] == STEPS for result in results)
    statuses = [(await client.runs.get(r["thread_id"], r["run_id"]))["status"] for r in runs]
    assert statuses == ["success"] * 6
    for r in runs:  # exactly the graph's steps, once each: the resumed runs went on from their checkpoints
        assert (await client.threads.get_state(r["thread_id"]))["values"]["steps"] == STEPS
    return runs


async def test_runs_of_an_executor_killed_mid_run_complete_on_the_other(cluster):
    _, (victim, survivor) = distributed(cluster)
    await _spread_then(cluster, [victim, survivor], victim, lambda e: os.kill(e.proc.pid, signal.SIGKILL))
    assert "resumes from checkpoint" in survivor.output()


async def test_runs_of_a_hung_executor_complete_on_the_other(cluster):
    _, (victim, survivor) = distributed(cluster, AGENT_SERVER_EXECUTOR_TIMEOUT_SECS="2")
    try:
        await _spread_then(cluster, [victim, survivor], victim, lambda e: os.kill(e.proc.pid, signal.SIGSTOP))
        assert "resumes from checkpoint" in survivor.output()
    finally:
        os.kill(victim.proc.pid, signal.SIGCONT)


async def test_a_restarted_orchestrator_loses_no_run(cluster):
    orchestrator, executors = distributed(cluster)
    client = cluster.client
    threads = [await new_thread(client) for _ in range(10)]
    runs = [await client.runs.create(t, SLOW, input={}, config=slow(0.3)) for t in threads]
    deadline = time.monotonic() + 20
    while orchestrator.output().count("dispatched to executor") < 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    os.kill(orchestrator.proc.pid, signal.SIGKILL)
    orchestrator.proc.wait()
    add_orchestrator(cluster, executors)  # takes over once the leases of the dead one expire
    results = await asyncio.gather(*(client.runs.join(r["thread_id"], r["run_id"]) for r in runs))
    assert all(result["steps"] == STEPS for result in results)
    statuses = [(await client.runs.get(r["thread_id"], r["run_id"]))["status"] for r in runs]
    assert statuses == ["success"] * 10


async def _lease_expiry(database_uri: str, run_id: str):
    async with await psycopg.AsyncConnection.connect(database_uri) as conn:
        cur = await conn.execute("SELECT lease_expires_at FROM run WHERE run_id = %s", (run_id,))
        return (await cur.fetchone())[0]


async def test_a_node_that_blocks_or_burns_the_cpu_delays_neither_leases_nor_other_streams(cluster):
    # one executor: the blocking run and the light one share it (each slot has a thread of its own)
    distributed(cluster, executors=1, slots=2)
    client = cluster.client
    for hog in ({"block": 1}, {"burn": 1}):
        hog_thread = await new_thread(client)
        run = await client.runs.create(hog_thread, SLOW, input={}, config={"configurable": {"delay": 2, **hog}})
        await run_status(client, hog_thread, run["run_id"], {"running"})
        await asyncio.sleep(0.3)  # inside its first step
        leased = await _lease_expiry(cluster.env["DATABASE_URI"], run["run_id"])
        arrivals = []
        light = await new_thread(client)
        async for part in client.runs.stream(light, SLOW, input={}, stream_mode="updates", config=slow(0.05)):
            arrivals.append(time.monotonic())
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        # a step's 50 ms, and at most 100 ms more beside a blocked thread; beside one burning the CPU the slots'
        # threads share the GIL, so less than the 2 s a shared event loop would hold them
        assert len(gaps) == 5 and max(gaps) < 0.05 + (0.1 if "block" in hog else 0.5), (hog, gaps)
        await asyncio.sleep(1)  # the orchestrator renews every lease_secs / 6 = 0.5 s
        assert await _lease_expiry(cluster.env["DATABASE_URI"], run["run_id"]) > leased
        await client.runs.cancel(hog_thread, run["run_id"], wait=True)


async def test_an_executor_refuses_calls_without_the_shared_secret(cluster):
    executor = add_executor(cluster)
    async with grpc.aio.insecure_channel(executor.address) as channel:
        status = channel.unary_unary("/agent_server.Executor/Status")
        for metadata in ((), (("x-agent-server-executor-secret", "wrong"),)):
            try:
                await status(b"", metadata=metadata, timeout=5)
                raise AssertionError("answered without the secret")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
        assert b'"slots":3' in await status(b"", metadata=(("x-agent-server-executor-secret", "test-secret"),), timeout=5)


async def test_worker_with_executors_runs_an_orchestrator_and_its_executors_on_this_host(cluster):
    worker = ServerProcess(env=cluster.env, command="worker", args=["--executors", "2"])
    cluster.workers.append(worker)
    worker.wait_for_log("dispatching to executors")
    worker.wait_for_log("up with")
    thread_id = await new_thread(cluster.client)
    result = await cluster.client.runs.wait(thread_id, SLOW, input={}, config=slow(0.01))
    assert result["steps"] == STEPS
    assert worker.stop() == 0


def _certificate(directory) -> tuple[dict[str, str], str]:
    """A self-signed certificate for 127.0.0.1 and its key as PEM files: (a TLS executor's env, the file its
    orchestrators trust)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent-server test executor")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "executor.pem", directory / "executor.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return {"AGENT_SERVER_EXECUTOR_TLS_CERT": str(cert_file), "AGENT_SERVER_EXECUTOR_TLS_KEY": str(key_file)}, str(cert_file)


async def test_executors_serve_tls_and_orchestrators_trusting_their_ca_run_through_them(cluster, tmp_path):
    tls, ca = _certificate(tmp_path)
    (executor,) = add_executors(cluster, 1, env=tls)
    assert "(TLS)" in executor.output()
    secret = (("x-agent-server-executor-secret", "test-secret"),)
    async with grpc.aio.insecure_channel(executor.address) as channel:  # plaintext: no answer
        try:
            await channel.unary_unary("/agent_server.Executor/Status")(b"", metadata=secret, timeout=5)
            raise AssertionError("a TLS executor answered a plaintext call")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
    add_orchestrator(cluster, [executor], AGENT_SERVER_EXECUTOR_TLS_CA=ca)
    client = cluster.client
    thread_id = await new_thread(client)
    events = [p.event async for p in client.runs.stream(thread_id, SLOW, input={}, stream_mode="updates", config=slow(0.01))]
    assert events == ["metadata", *["updates"] * 5]
    assert started_on(executor) == 1


def test_an_executor_given_a_certificate_without_its_key_refuses_to_start(cluster, tmp_path):
    tls, _ = _certificate(tmp_path)
    executor = ServerProcess(env={**cluster.env, **SECRET, "AGENT_SERVER_EXECUTOR_TLS_CERT": tls["AGENT_SERVER_EXECUTOR_TLS_CERT"]},
                             command="executor", args=["--host", "127.0.0.1", "--port", str(free_port())])
    cluster.workers.append(executor)
    assert executor.proc.wait(60) != 0
    assert "needs both AGENT_SERVER_EXECUTOR_TLS_CERT and AGENT_SERVER_EXECUTOR_TLS_KEY" in executor.output()
