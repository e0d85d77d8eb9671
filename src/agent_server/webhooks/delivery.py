"""Deliver the webhook outbox: every process that runs the queue does, off the runs' path.

Each delivery is a POST of the stored payload with an `Idempotency-Key` (the same on every try), to the
address its URL resolves to now, checked against the policy again. 2xx: delivered. 5xx, 429, a timeout
or a connection error: tried again with backoff, up to MAX_ATTEMPTS. Anything else (a 4xx, a redirect,
a URL the policy now refuses): given up at once. Giving up is a log line at error level. Deliveries run
side by side (up to CONCURRENCY), each bounded by TIMEOUT_SECONDS: a slow or dead receiver holds one
slot for that long at most."""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import httpx

from ..aio import wait_set
from ..serde import dumps
from ..storage.webhooks import WebhookRepo
from .policy import NotResolved, Refused, WebhookConfig

log = logging.getLogger(__name__)

CONCURRENCY = 10
TIMEOUT_SECONDS = 10.0  # one request, connection included
LEASE_SECONDS = 60.0  # a claimed delivery whose deliverer died is due again after this
MAX_ATTEMPTS = 10  # with the backoff below, a receiver may be down for about 8 minutes
POLL_SECONDS = 2.0  # a safety net: runs ending here wake the loop at once


def backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: 1, 2, 4, ... at most 5 minutes."""
    return min(2.0 ** (attempts - 1), 300.0)


class Retry(Exception):
    """This try failed in a way worth another one."""


class GiveUp(Exception):
    """This try failed in a way another one would not mend."""


class Deliverer:
    def __init__(self, repo: WebhookRepo, config: WebhookConfig, disabled: bool = False) -> None:
        self.repo, self.config = repo, config
        self.disabled = disabled  # http.disable_webhooks: each is dropped, with a log line
        self._wake = asyncio.Event()
        self._sending: set[asyncio.Task] = set()

    def wake(self) -> None:
        """A run has ended: look for its webhook now."""
        self._wake.set()

    async def run(self) -> None:
        """Claim due deliveries and send them, until cancelled."""
        timeout = httpx.Timeout(TIMEOUT_SECONDS, connect=min(5.0, TIMEOUT_SECONDS))
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            try:
                while True:
                    try:
                        await self._claim_and_wait(client)
                    except Exception:
                        log.exception("webhook delivery loop failed; retrying in 1s")
                        await asyncio.sleep(1)
            finally:
                for task in self._sending:
                    task.cancel()
                await asyncio.gather(*self._sending, return_exceptions=True)

    async def _claim_and_wait(self, client: httpx.AsyncClient) -> None:
        self._wake.clear()  # before claiming: a wake-up during the claim is not lost
        free = CONCURRENCY - len(self._sending)
        rows = await self.repo.claim(free, LEASE_SECONDS) if free > 0 else []
        for row in rows:
            task = asyncio.create_task(self._deliver(client, row), name=f"webhook-{row['run_id']}")
            self._sending.add(task)
            task.add_done_callback(self._sent)
        if rows and len(rows) == free:
            return  # maybe more due
        timeout = POLL_SECONDS
        if free > 0 and (due := await self.repo.next_due_in()) is not None:
            timeout = min(timeout, due + 0.01)
        await wait_set(self._wake, timeout)

    def _sent(self, task: asyncio.Task) -> None:
        self._sending.discard(task)
        self._wake.set()  # a slot is free

    async def _deliver(self, client: httpx.AsyncClient, row: dict) -> None:
        run_id, url, attempts = row["run_id"], row["url"], row["attempts"]
        if self.disabled:
            log.info("webhook of run %s to %s not sent: http.disable_webhooks is set", run_id, url)
            await self.repo.done(row)
            return
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS + 5):  # the host's resolution included
                await self._post(client, row)
        except (Refused, GiveUp) as exc:
            log.error("webhook of run %s to %s given up: %s", run_id, url, exc)
        except (Retry, TimeoutError, httpx.TransportError) as exc:
            reason = _reason(exc)
            if attempts >= MAX_ATTEMPTS:
                log.error("webhook of run %s to %s given up after %d attempts: %s", run_id, url, attempts, reason)
            else:
                delay = backoff(attempts)
                log.warning("webhook of run %s to %s failed (%s); trying again in %.0fs", run_id, url, reason, delay)
                await self.repo.retry(row, delay)
                return
        except Exception as exc:  # noqa: BLE001 - a bad URL or payload must not be tried forever
            log.error("webhook of run %s to %s given up: %r", run_id, url, exc)
        else:
            log.info("webhook of run %s delivered to %s", run_id, url)
        await self.repo.done(row)

    async def _post(self, client: httpx.AsyncClient, row: dict) -> None:
        try:
            target = await self.config.check(row["url"])
        except NotResolved as exc:  # DNS trouble now may be gone later
            raise Retry(str(exc)) from None
        payload = self.config.payload({**row["payload"], "webhook_sent_at": datetime.now(UTC).isoformat()})
        headers = {**self.config.headers, "Content-Type": "application/json", "Idempotency-Key": str(row["id"])}
        url, extensions = httpx.URL(target.url), {}
        if target.address is not None:  # connect to the address that was checked, not one resolved again
            headers["Host"] = url.netloc.decode("ascii")
            extensions["sni_hostname"] = target.host
            url = url.copy_with(host=target.address)
        response = await client.post(url, content=dumps(payload), headers=headers, extensions=extensions)
        if response.status_code >= 500 or response.status_code == 429:
            raise Retry(f"HTTP {response.status_code}")
        if not response.is_success:
            raise GiveUp(f"the receiver answered HTTP {response.status_code}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer in {TIMEOUT_SECONDS:.0f}s"
    return str(exc) or type(exc).__name__
