"""Operating the bridge: /metrics in Prometheus format, /healthz, /readyz, JSON logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from gogs_scim.bootstrap import Bridge
from gogs_scim.logs import configure_logging, scrub
from gogs_scim.scim.schema import USER_SCHEMA
from tests.conftest import unique

pytestmark = pytest.mark.gogs

PASSWORD = "Log-Secret-Pw-5d1a77"


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _value(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(value for got, value in samples if all(got.get(k) == v for k, v in labels.items()))


def test_metrics_count_requests_gogs_calls_and_read_the_backlog(
    bridge: Bridge, scim: TestClient, bridge_factory: Callable[..., Bridge]
) -> None:
    sent = 3
    for _ in range(sent):
        created = scim.post("/Users", json={"schemas": [USER_SCHEMA], "userName": unique("m")})
        assert created.status_code == 201, created.text
    assert scim.get("/Users", params={"count": 1}).status_code == 200
    # Another bridge in the same process keeps its own registry.
    other = bridge_factory()
    with TestClient(other.app) as plain:
        assert plain.get("/scim/v2/Users").status_code == 401
        assert plain.get("/healthz").status_code == 200
    with TestClient(bridge.app) as plain:  # no SCIM token needed
        scraped = plain.get("/metrics")
        assert plain.get("/healthz").json() == {"status": "ok"}
        ready = plain.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["store"] == "ok"
    assert ready.json()["gogs"] == "ok"
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    samples = _samples(scraped.text)

    requests = samples["gogs_scim_http_requests_total"]
    assert _value(requests, resource="Users", method="POST", status="201") == sent
    assert _value(requests, resource="Users", method="GET", status="200") == 1
    assert _value(requests, status="401") == 0  # that was the other bridge
    latency = samples["gogs_scim_http_request_duration_seconds_count"]
    assert _value(latency, resource="Users", method="POST") == sent
    assert _value(samples["gogs_scim_gogs_calls_total"], method="POST", status="201") >= sent
    assert "gogs_scim_gogs_call_errors_total" not in samples or all(
        value >= 0 for _, value in samples["gogs_scim_gogs_call_errors_total"]
    )
    [(_, pending)] = samples["gogs_scim_converge_jobs_pending"]
    assert isinstance(pending, float)
    assert pending >= 0
    assert samples["gogs_scim_users_in_error"] == [({}, 0.0)]
    assert samples["gogs_scim_groups_in_error"] == [({}, 0.0)]
    assert samples["gogs_scim_store_up"] == [({}, 1.0)]
    assert "Users/" not in scraped.text  # never an id in a label

    with TestClient(other.app) as plain:
        other_samples = _samples(plain.get("/metrics").text)
    assert _value(other_samples["gogs_scim_http_requests_total"], status="401") == 1
    assert _value(other_samples["gogs_scim_http_requests_total"], status="201") == 0


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the bridge logs during the test, as `serve` writes it (JSON lines)."""
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(json=True, stream=buffer)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_json_logs_carry_the_request_id_and_never_the_password(
    scim: TestClient, json_log: io.StringIO
) -> None:
    created = scim.post(
        "/Users",
        json={"schemas": [USER_SCHEMA], "userName": unique("log"), "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    request_id = created.headers["X-Request-Id"]
    given = scim.post(
        "/Users",
        json={"schemas": [USER_SCHEMA], "userName": unique("log"), "password": PASSWORD},
        headers={"X-Request-Id": "idp-req-0001"},
    )
    assert given.headers["X-Request-Id"] == "idp-req-0001"

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert lines, "nothing was logged"
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= set(line)
        assert PASSWORD not in json.dumps(line)
    mine = [line for line in lines if line["request_id"] == request_id]
    access = [line for line in mine if line["logger"] == "gogs_scim.access"]
    assert len(access) == 1
    assert "POST /scim/v2/Users -> 201" in access[0]["message"]
    # The Gogs calls made for the request carry its id too (set by ScimMiddleware).
    assert any(line["logger"] == "gogs_scim.gogs.calls" for line in mine)
    assert any(line["request_id"] == "idp-req-0001" for line in lines)
    assert PASSWORD not in json_log.getvalue()


def test_log_messages_are_scrubbed_of_secret_looking_values() -> None:
    assert PASSWORD not in scrub(f"password={PASSWORD} user=x")
    assert PASSWORD not in scrub(f'{{"password": "{PASSWORD}"}}')
    assert PASSWORD not in scrub(f"Authorization: Bearer {PASSWORD}")
    assert "user=x" in scrub(f"password={PASSWORD} user=x")
