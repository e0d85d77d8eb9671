"""Property-based fuzzing of every operation in our /openapi.json (schemathesis): whatever a client sends,
the answer is never a 5xx. A short budget (a few examples per operation, the same ones every run) keeps it short.

It runs on a server of its own (its own database): the fuzzer creates threads and assistants with odd
metadata, which must not show up in other tests' searches on the shared server."""
from __future__ import annotations

import re
from collections import Counter
import time

import pytest
import requests

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402  (installed with schemathesis)
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from conftest import ServerProcess, create_database, drop_database, running  # noqa: E402

EXAMPLES_PER_OPERATION = 6
REQUEST_TIMEOUT = 10

# Streams never end on their own (or hold until a run ends): not for a request/response fuzzer.
STREAMING = r"/stream$"

# 5xx the fuzzer has found that are known and being fixed elsewhere: "METHOD /path" → what was seen.
# Remove an entry once its fix lands; a 5xx on any operation not listed fails the test.
KNOWN_SERVER_ERRORS: dict[str, str] = {}


@pytest.fixture(scope="module")
def fuzz_server(postgres_server):
    uri = create_database(postgres_server)
    try:
        yield from running(ServerProcess(env={"DATABASE_URI": uri}))
    finally:
        drop_database(postgres_server, uri)


def _operations(url: str):
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()
        if not re.search(STREAMING, operation.path):
            yield operation


def test_no_server_errors(fuzz_server):
    """Every operation, valid and invalid inputs: each 5xx or hang is collected, then all are reported at once."""
    found: dict[str, str] = {}
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    operations = list(_operations(fuzz_server.url))
    assert len(operations) > 20, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            def fuzz(case):
                key = f"{case.method.upper()} {case.operation.path}"
                if key in found:
                    return
                try:
                    response = case.call(base_url=fuzz_server.url, timeout=REQUEST_TIMEOUT)
                except requests.Timeout:
                    found[key] = f"no answer within {REQUEST_TIMEOUT}s\n{case.as_curl_command()}"
                    return
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    found[key] = f"{response.status_code} {response.text[:300]}\n{case.as_curl_command()}"

            try:
                fuzz()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to make invalid (GET /ok)
    print(f"fuzzed {len(operations)} operations in {time.monotonic() - started:.1f}s; answers: {dict(statuses)}")
    assert sum(n for status, n in statuses.items() if status < 300) > len(operations), statuses  # it reached the handlers
    for key, what in found.items():
        print(f"{'known' if key in KNOWN_SERVER_ERRORS else 'NEW'}: {key}: {what}")
    new = {key: what for key, what in found.items() if key not in KNOWN_SERVER_ERRORS}
    assert not new, "server errors:\n" + "\n".join(f"{k}: {v}" for k, v in new.items())
