"""The webhook destination: payload, signature, answers, faults; mock transport and real server."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from corral.destinations import create
from corral.destinations.base import (
    Batch,
    Destination,
    Mode,
    Operation,
    Outcome,
    Record,
    RowResult,
)
from corral.destinations.webhook import (
    WebhookConfig,
    WebhookDestination,
    compute_batch_id,
    sign,
    verify_signature,
)
from corral.errors import DefinitionError, DestinationError, InternalError
from tests.helpers.fake_server import FakeServer, RecordedRequest, Reply, serve

URL = "https://hooks.example.test/corral/in"
SECRET = "whsec-test"

Handler = Callable[[httpx.Request], httpx.Response]


def records(*keys: str) -> list[Record]:
    return [Record(key, {"email": f"{key}@example.com", "score": int(key)}) for key in keys]


def batch(*keys: str, operation: Operation = Operation.ADD) -> Batch:
    return Batch(operation, records(*keys))


class Receiver:
    """A mock-transport handler that records requests and answers with one response."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses) or [httpx.Response(200)]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]

    def payload(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def opened(handler: Handler, mode: Mode = Mode.UPSERT, **config: Any) -> WebhookDestination:
    settings = {"url": URL, "secret": SECRET, **config}
    destination = WebhookDestination(
        WebhookConfig.model_validate(settings), transport=httpx.MockTransport(handler)
    )
    destination.open(mode, ["email", "score"])
    return destination


def outcomes(results: list[RowResult] | object) -> dict[str, tuple[Outcome, str | None]]:
    assert isinstance(results, list)
    return {r.key: (r.outcome, r.reason) for r in results}


# -- catalog and configuration ------------------------------------------------------------


def test_catalog_declares_every_mode_and_the_defaults() -> None:
    catalog = WebhookDestination.catalog
    assert catalog.name == "webhook"
    assert catalog.modes == frozenset(Mode)
    assert catalog.batch_size == 500
    assert catalog.config is WebhookConfig
    properties = catalog.config_schema()["properties"]
    assert '"writeOnly": true' in json.dumps(properties["secret"])
    assert '"writeOnly": true' in json.dumps(properties["headers"])


def test_instance_catalog_carries_its_configured_limits() -> None:
    config = WebhookConfig(url=URL, batch_size=50, concurrency=4, requests_per_second=2.5)
    destination = WebhookDestination(config)

    assert isinstance(destination, Destination)
    assert destination.catalog.batch_size == 50
    assert destination.catalog.concurrency == 4
    rate = destination.catalog.rate_limit
    assert rate is not None and rate.requests / rate.per_seconds == pytest.approx(2.5)
    assert WebhookDestination.catalog.batch_size == 500


def test_created_through_the_registry() -> None:
    destination = create(
        "webhook",
        {"url": URL, "secret": SECRET, "headers": {"X-Token": "t"}},
        transport=httpx.MockTransport(Receiver()),
    )
    assert isinstance(destination, WebhookDestination)
    assert destination.config.secret is not None
    assert SECRET not in repr(destination.config)


@pytest.mark.parametrize(
    "settings",
    [
        {"url": "ftp://example.test/x"},
        {"url": "not a url"},
        {"url": URL, "batch_size": 10_001},
        {"url": URL, "batch_size": 0},
        {"url": URL, "requests_per_second": 0},
        {"url": URL, "unknown": 1},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WebhookConfig.model_validate(settings)
    with pytest.raises(DefinitionError, match="webhook destination's settings are wrong"):
        create("webhook", settings)


# -- what is sent --------------------------------------------------------------------------


def test_payload_headers_and_signature() -> None:
    receiver = Receiver()
    destination = opened(receiver, Mode.MEMBERSHIP, sync="vips", headers={"X-Hook-Token": "abc"})

    destination.send(batch("1", "2", operation=Operation.REMOVE))

    [request] = receiver.requests
    assert request.method == "POST"
    assert str(request.url) == URL
    body = receiver.payload()
    assert body == {
        "sync": "vips",
        "operation": "remove",
        "mode": "membership",
        "batch_id": body["batch_id"],
        "records": [
            {"key": "1", "fields": {"email": "1@example.com", "score": 1}},
            {"key": "2", "fields": {"email": "2@example.com", "score": 2}},
        ],
    }
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == body["batch_id"]
    assert request.headers["X-Hook-Token"] == "abc"
    timestamp = request.headers["X-Corral-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    assert request.headers["X-Corral-Signature"].startswith("v1=")
    assert verify_signature(
        SECRET, timestamp, request.content, request.headers["X-Corral-Signature"]
    )


def test_no_secret_means_no_signature() -> None:
    receiver = Receiver()
    destination = opened(receiver, secret=None)

    destination.send(batch("1"))

    assert "X-Corral-Signature" not in receiver.requests[0].headers


def test_values_from_a_warehouse_become_json() -> None:
    receiver = Receiver()
    destination = opened(receiver)
    fields = {
        "at": dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.UTC),
        "day": dt.date(2024, 5, 1),
        "amount": Decimal("12.30"),
        "missing": float("nan"),
        "tags": ("a", "b"),
        "none": None,
    }

    destination.send(Batch(Operation.CHANGE, [Record("9", fields)]))

    assert receiver.payload()["records"][0]["fields"] == {
        "at": "2024-05-01T08:30:00+00:00",
        "day": "2024-05-01",
        "amount": "12.30",
        "missing": None,
        "tags": ["a", "b"],
        "none": None,
    }


def test_batch_id_is_stable_for_a_resent_batch_and_changes_with_content() -> None:
    first = compute_batch_id("s", Mode.UPSERT, batch("1", "2"))

    assert compute_batch_id("s", Mode.UPSERT, batch("1", "2")) == first
    assert compute_batch_id("s", Mode.UPSERT, batch("2", "1")) == first
    assert compute_batch_id("s", Mode.UPSERT, batch("1", "3")) != first
    assert compute_batch_id("s", Mode.UPSERT, batch("1", "2", operation=Operation.REMOVE)) != first
    assert compute_batch_id("t", Mode.UPSERT, batch("1", "2")) != first
    changed = Batch(Operation.ADD, [Record("1", {"email": "new"}), *records("2")])
    assert compute_batch_id("s", Mode.UPSERT, changed) != first


def test_a_resent_batch_carries_the_same_idempotency_key() -> None:
    receiver = Receiver()
    destination = opened(receiver)

    destination.send(batch("1", "2"))
    destination.send(batch("1", "2"))

    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert keys[0] == keys[1]


def test_a_batch_larger_than_batch_size_is_split() -> None:
    receiver = Receiver()
    destination = opened(receiver, batch_size=2)

    results = destination.send(batch("1", "2", "3", "4", "5"))

    assert [len(receiver.payload(i)["records"]) for i in range(3)] == [2, 2, 1]
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 3
    assert [r.key for r in results] == ["1", "2", "3", "4", "5"]  # type: ignore[union-attr]


def test_every_attempt_is_signed_afresh() -> None:
    receiver = Receiver(httpx.Response(503, headers={"Retry-After": "0"}), httpx.Response(200))
    destination = opened(receiver)

    destination.send(batch("1"))

    assert len(receiver.requests) == 2
    for request in receiver.requests:
        headers = request.headers
        assert verify_signature(
            SECRET, headers["X-Corral-Timestamp"], request.content, headers["X-Corral-Signature"]
        )


def test_send_before_open_is_a_bug() -> None:
    destination = WebhookDestination(WebhookConfig(url=URL))
    with pytest.raises(InternalError):
        destination.send(batch("1"))


def test_close_then_open_again_works() -> None:
    receiver = Receiver()
    destination = opened(receiver)
    destination.close()
    destination.open(Mode.INSERT, ["email"])

    destination.send(batch("1"))

    assert receiver.payload()["mode"] == "insert"


# -- how answers become row results --------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200),
        httpx.Response(204),
        httpx.Response(202, text="OK", headers={"Content-Type": "text/plain"}),
        httpx.Response(200, json={"received": 2}),
        httpx.Response(200, json=[1, 2]),
    ],
)
def test_success_without_per_row_answers_accepts_every_row(response: httpx.Response) -> None:
    destination = opened(Receiver(response))

    results = destination.send(batch("1", "2"))

    assert outcomes(results) == {"1": (Outcome.ACCEPTED, None), "2": (Outcome.ACCEPTED, None)}


def test_per_row_answers_are_followed() -> None:
    answer = {
        "results": [
            {"key": "1", "status": "accepted"},
            {"key": "2", "status": "rejected", "reason": "invalid email"},
            {"key": "3", "status": "retry", "reason": "locked", "retry_after": 30},
            {"key": "4", "status": "maybe"},
            {"key": "99", "status": "accepted"},
        ]
    }
    destination = opened(Receiver(httpx.Response(200, json=answer)))

    results = destination.send(batch("1", "2", "3", "4", "5"))

    assert outcomes(results) == {
        "1": (Outcome.ACCEPTED, None),
        "2": (Outcome.REJECTED, "invalid email"),
        "3": (Outcome.RETRY, "locked"),
        "4": (Outcome.RETRY, "malformed response: unknown status 'maybe'"),
        "5": (Outcome.RETRY, "missing from response"),
    }
    assert isinstance(results, list) and results[2].retry_after == 30.0


def test_numeric_keys_in_answers_match() -> None:
    answer = {"results": [{"key": 1, "status": "rejected", "reason": "no"}]}
    destination = opened(Receiver(httpx.Response(200, json=answer)))

    assert outcomes(destination.send(batch("1"))) == {"1": (Outcome.REJECTED, "no")}


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, content=b'{"results": [', headers={"Content-Type": "application/json"}),
        httpx.Response(200, json={"results": "all good"}),
        httpx.Response(200, json={"results": ["1"]}),
    ],
)
def test_malformed_json_answers_retry_every_row(response: httpx.Response) -> None:
    destination = opened(Receiver(response))

    results = outcomes(destination.send(batch("1", "2")))

    assert {outcome for outcome, _ in results.values()} == {Outcome.RETRY}
    assert all(reason and reason.startswith("malformed response") for _, reason in results.values())


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_client_errors_reject_every_row_with_the_status_and_an_excerpt(status: int) -> None:
    answer = httpx.Response(status, text="email:\n  missing   from record")
    destination = opened(Receiver(answer))

    results = outcomes(destination.send(batch("1", "2")))

    expected = f"HTTP {status}: email: missing from record"
    assert results == {"1": (Outcome.REJECTED, expected), "2": (Outcome.REJECTED, expected)}


def test_long_error_bodies_are_cut_short() -> None:
    destination = opened(Receiver(httpx.Response(400, text="x" * 5_000)))

    [result] = destination.send(batch("1"))  # type: ignore[misc]

    assert result.reason is not None and len(result.reason) < 250


def test_a_redirect_rejects_rows_and_names_the_new_place() -> None:
    response = httpx.Response(308, headers={"Location": "https://new.example.test/in"})
    destination = opened(Receiver(response))

    [result] = destination.send(batch("1"))  # type: ignore[misc]

    assert result.outcome is Outcome.REJECTED
    assert result.reason is not None and "https://new.example.test/in" in result.reason


def test_rate_limited_past_backoff_retries_rows_after_the_asked_wait() -> None:
    receiver = Receiver(httpx.Response(429, headers={"Retry-After": "120"}))
    destination = opened(receiver)

    results = destination.send(batch("1", "2"))

    assert isinstance(results, list) and len(receiver.requests) == 1
    assert {(r.outcome, r.retry_after) for r in results} == {(Outcome.RETRY, 120.0)}
    assert results[0].reason is not None and "HTTP 429" in results[0].reason


def test_an_outage_retries_every_row_after_the_attempts() -> None:
    receiver = Receiver(httpx.Response(503, headers={"Retry-After": "0"}))
    destination = opened(receiver)

    results = outcomes(destination.send(batch("1", "2")))

    assert len(receiver.requests) == 5
    assert {outcome for outcome, _ in results.values()} == {Outcome.RETRY}
    assert all(reason and "HTTP 503" in reason for _, reason in results.values())


def test_other_server_errors_retry_rows_without_waiting() -> None:
    receiver = Receiver(httpx.Response(501, text="no"))
    destination = opened(receiver)

    results = outcomes(destination.send(batch("1")))

    assert results == {"1": (Outcome.RETRY, "HTTP 501: no")}
    assert len(receiver.requests) == 1


def test_refused_credentials_stop_the_run() -> None:
    destination = opened(Receiver(httpx.Response(401)))

    with pytest.raises(DestinationError, match="HTTP 401"):
        destination.send(batch("1"))


# -- check ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "ok"),
    [
        (200, True),
        (204, True),
        (404, True),
        (405, True),
        (429, True),
        (501, True),
        (500, False),
        (503, False),
    ],
)
def test_check_is_a_head_request(status: int, ok: bool) -> None:
    receiver = Receiver(httpx.Response(status))
    destination = WebhookDestination(
        WebhookConfig(url=URL + "?tenant=3"), transport=httpx.MockTransport(receiver)
    )

    result = destination.check()

    assert result.ok is ok
    assert f"HTTP {status}" in result.message
    assert [(r.method, str(r.url)) for r in receiver.requests] == [("HEAD", URL + "?tenant=3")]


def test_check_reports_refused_credentials() -> None:
    destination = WebhookDestination(
        WebhookConfig(url=URL), transport=httpx.MockTransport(Receiver(httpx.Response(403)))
    )

    result = destination.check()

    assert not result.ok and "credentials" in result.message


# -- signatures, as a receiver checks them -------------------------------------------------


def test_verify_signature() -> None:
    body = b'{"records":[]}'
    now = 1_700_000_000.0
    header = sign(SECRET, "1700000000", body)

    assert verify_signature(SECRET, "1700000000", body, header, now=now)
    assert verify_signature(SECRET, "1700000000", body, f"v1=00ff, {header}", now=now)
    assert not verify_signature("other", "1700000000", body, header, now=now)
    assert not verify_signature(SECRET, "1700000000", body + b" ", header, now=now)
    assert not verify_signature(SECRET, "1700000001", body, header, now=now)
    assert not verify_signature(SECRET, "1700000000", body, header, now=now + 301)
    assert verify_signature(SECRET, "1700000000", body, header, now=now + 301, tolerance=None)
    assert not verify_signature(SECRET, "yesterday", body, header, now=now)
    assert not verify_signature(SECRET, "nan", body, sign(SECRET, "nan", body), now=now)
    assert verify_signature(SECRET.encode(), "1700000000", body, header, now=now)


# -- against a real local server -----------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeServer]:
    yield from serve()


def real(server: FakeServer, **config: Any) -> WebhookDestination:
    settings = {"url": f"{server.url}/hooks/corral", "secret": SECRET, "timeout": 2.0, **config}
    destination = WebhookDestination(WebhookConfig.model_validate(settings))
    destination.open(Mode.MIRROR, ["email", "score"])
    return destination


def judge_rows(request: RecordedRequest) -> Reply:
    """A receiver that checks the signature and rejects odd scores."""
    headers = request.headers
    if not verify_signature(
        SECRET, headers["x-corral-timestamp"], request.body, headers["x-corral-signature"]
    ):
        return Reply.json({"error": "bad signature"}, 400)
    results = [
        {"key": r["key"], "status": "accepted"}
        if r["fields"]["score"] % 2 == 0
        else {"key": r["key"], "status": "rejected", "reason": "odd score"}
        for r in request.json()["records"]
    ]
    return Reply.json({"results": results}, 207)


def test_real_server_partial_batch_failure(server: FakeServer) -> None:
    server.respond_with(judge_rows)
    destination = real(server)

    results = outcomes(destination.send(batch("1", "2", "3", "4")))

    assert results == {
        "1": (Outcome.REJECTED, "odd score"),
        "2": (Outcome.ACCEPTED, None),
        "3": (Outcome.REJECTED, "odd score"),
        "4": (Outcome.ACCEPTED, None),
    }
    [seen] = server.requests
    assert seen.method == "POST" and seen.path == "/hooks/corral"
    assert seen.json()["mode"] == "mirror"
    destination.close()


def test_real_server_rate_limit_then_per_row_answers(server: FakeServer) -> None:
    server.enqueue(Reply.rate_limited(retry_after="0"))
    server.respond_with(judge_rows)
    destination = real(server)

    results = outcomes(destination.send(batch("2", "4")))

    assert results == {"2": (Outcome.ACCEPTED, None), "4": (Outcome.ACCEPTED, None)}
    first, second = server.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    destination.close()


def test_real_server_slow_answer_is_retried(server: FakeServer) -> None:
    server.enqueue(Reply.slow(1.5))
    server.respond_with(judge_rows)
    destination = real(server, timeout=0.3)

    results = outcomes(destination.send(batch("2")))

    assert results == {"2": (Outcome.ACCEPTED, None)}
    assert len(server.requests) == 2
    destination.close()


def test_real_server_malformed_answer_retries_rows(server: FakeServer) -> None:
    server.respond_with(Reply.malformed())
    destination = real(server)

    results = outcomes(destination.send(batch("1", "2")))

    assert results == {
        "1": (Outcome.RETRY, "malformed response"),
        "2": (Outcome.RETRY, "malformed response"),
    }
    destination.close()


def test_real_server_truncated_answer_is_retried(server: FakeServer) -> None:
    server.enqueue(Reply.truncated())
    destination = real(server)

    results = outcomes(destination.send(batch("1")))

    assert results == {"1": (Outcome.ACCEPTED, None)}
    assert len(server.requests) == 2
    destination.close()


def test_real_server_check(server: FakeServer) -> None:
    destination = real(server)

    result = destination.check()

    assert result.ok
    assert [r.method for r in server.requests] == ["HEAD"]


def test_check_of_a_server_that_is_gone() -> None:
    with FakeServer() as server:
        url = server.url
    destination = WebhookDestination(WebhookConfig(url=url, timeout=1.0))

    result = destination.check()

    assert not result.ok and "ConnectError" in result.message


# -- the examples in docs/destinations/webhook.md ------------------------------------------


DOCS = Path(__file__).parents[2] / "docs" / "destinations" / "webhook.md"


def docs_example(marker: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run the page's Python block that contains `marker`; return its names."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    [code] = [block for block in blocks if marker in block]
    monkeypatch.setenv("CORRAL_WEBHOOK_SECRET", SECRET)
    names: dict[str, Any] = {"__name__": "webhook_docs_example"}
    exec(compile(code, str(DOCS), "exec"), names)
    return names


def test_docs_standalone_verify_agrees_with_sign(monkeypatch: pytest.MonkeyPatch) -> None:
    verify = docs_example("def verify(", monkeypatch)["verify"]
    body = b'{"records":[]}'
    timestamp = str(int(time.time()))
    header = sign(SECRET, timestamp, body)

    assert verify(SECRET, timestamp, body, header)
    assert verify(SECRET, timestamp, body, f"v1=bad, {header}")
    assert not verify("other", timestamp, body, header)
    assert not verify(SECRET, str(int(time.time()) - 3600), body, header)
    assert not verify(SECRET, "soon", body, header)


def test_docs_receiver_answers_the_destination(monkeypatch: pytest.MonkeyPatch) -> None:
    receive = docs_example("class Receiver", monkeypatch)["receive"]

    def handler(request: httpx.Request) -> httpx.Response:
        status, answer = receive(request.headers, request.content)
        return httpx.Response(status, json=answer)

    destination = opened(handler)
    sent = Batch(Operation.ADD, [Record("1", {"email": "a@example.com"}), Record("2", {})])

    first = outcomes(destination.send(sent))
    again = outcomes(destination.send(sent))

    assert first == again == {"1": (Outcome.ACCEPTED, None), "2": (Outcome.REJECTED, "no email")}


def test_docs_receiver_on_a_real_server(monkeypatch: pytest.MonkeyPatch) -> None:
    example = docs_example("class Receiver", monkeypatch)
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), example["Receiver"])
    example["Receiver"].log_message = lambda *args: None
    thread = threading.Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/corral"
        destination = WebhookDestination(
            WebhookConfig(url=url, secret=SecretStr(SECRET), timeout=5.0)
        )
        destination.open(Mode.MEMBERSHIP, ["email"])

        assert destination.check().ok
        results = outcomes(destination.send(batch("1", "2", operation=Operation.REMOVE)))
        assert results == {"1": (Outcome.ACCEPTED, None), "2": (Outcome.ACCEPTED, None)}

        impostor = WebhookDestination(
            WebhookConfig(url=url, secret=SecretStr("wrong"), timeout=5.0)
        )
        impostor.open(Mode.MEMBERSHIP, ["email"])
        with pytest.raises(DestinationError, match="HTTP 401"):
            impostor.send(batch("1"))
    finally:
        receiver.shutdown()
        receiver.server_close()
        thread.join(timeout=5)
