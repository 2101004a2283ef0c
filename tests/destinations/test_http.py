"""HttpClient: units on a mock transport with a fake clock, then faults from a real server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from corral.destinations.base import RateLimit
from corral.destinations.http import HttpClient, parse_retry_after, seconds_until_epoch
from corral.errors import DestinationError, TransientDestinationError
from tests.helpers.fake_server import FakeServer, RecordedRequest, Reply, serve

Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A clock that moves only when the code under test sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


class Script:
    """A mock-transport handler that plays responses (or raises errors) in order."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


def make_client(handler: Handler, fake: FakeTime | None = None, **options: object) -> HttpClient:
    fake = fake or FakeTime()
    return HttpClient(
        destination="acme",
        base_url="https://api.acme.test/v1",
        transport=httpx.MockTransport(handler),
        sleep=fake.sleep,
        clock=fake.clock,
        **options,  # type: ignore[arg-type]
    )


# -- parse_retry_after -------------------------------------------------------------------


NOON = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Fri, 01 Mar 2024 12:00:30 GMT", 30.0),
        ("Fri, 01 Mar 2024 11:59:00 GMT", 0.0),  # in the past: no wait
        (None, None),
        ("", None),
        ("-3", None),
        ("soon", None),
        ("Fri, 99 Foo 2024", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOON) == seconds


# -- success, pass-through and errors ------------------------------------------------------


def test_success_returns_the_response_and_logs_one_info_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script(httpx.Response(200, json={"id": 7}))
    client = make_client(script, headers={"X-Static": "yes"})

    with caplog.at_level(logging.INFO, logger="corral.destinations.http"):
        response = client.request(
            "POST", "/contacts", records=3, json=[1, 2, 3], params={"dry": "no"}
        )

    assert response.json() == {"id": 7}
    sent = script.requests[0]
    assert str(sent.url) == "https://api.acme.test/v1/contacts?dry=no"
    assert sent.headers["X-Static"] == "yes"
    assert sent.content == b"[1,2,3]"
    [line] = caplog.records
    assert line.levelno == logging.INFO
    assert line.getMessage().startswith("acme POST /contacts -> HTTP 200 OK, 3 records, 1 attempts")
    assert (line.destination, line.records, line.attempts) == ("acme", 3, 1)  # type: ignore[attr-defined]


def test_raw_content_and_per_request_headers_are_sent() -> None:
    script = Script(httpx.Response(204))
    client = make_client(script)

    client.request("PUT", "/blob", content=b"\x00\x01", headers={"Content-Type": "x/y"})

    assert script.requests[0].content == b"\x00\x01"
    assert script.requests[0].headers["Content-Type"] == "x/y"


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_other_client_errors_are_returned_without_retrying(status: int) -> None:
    script = Script(httpx.Response(status, json={"errors": ["bad email"]}))
    client = make_client(script)

    assert client.request("POST", "/contacts").status_code == status
    assert len(script.requests) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_raise_a_permanent_error_with_a_hint(status: int) -> None:
    script = Script(httpx.Response(status))
    client = make_client(script)

    with pytest.raises(DestinationError) as caught:
        client.request("GET", "/me")

    assert not isinstance(caught.value, TransientDestinationError)
    assert f"HTTP {status}" in str(caught.value)
    assert "credentials" in (caught.value.hint or "")
    assert len(script.requests) == 1


# -- retries ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retry_statuses_are_retried_until_success(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(httpx.Response(status), httpx.Response(status), httpx.Response(200))
    fake = FakeTime()
    client = make_client(script, fake)

    with caplog.at_level(logging.INFO, logger="corral.destinations.http"):
        assert client.request("POST", "/contacts", records=2).status_code == 200

    assert len(script.requests) == 3
    assert len(fake.sleeps) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(warnings) == 2 and f"HTTP {status}" in warnings[0].getMessage()
    assert len(infos) == 1 and "3 attempts" in infos[0].getMessage()


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    script = Script(httpx.Response(503))
    fake = FakeTime()
    client = make_client(script, fake, max_attempts=9, backoff_base=0.5, backoff_max=4.0)

    with pytest.raises(TransientDestinationError):
        client.request("GET", "/slow")

    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert len(fake.sleeps) == len(ceilings)
    assert all(0.0 <= s <= c for s, c in zip(fake.sleeps, ceilings, strict=True))


def test_jitter_spreads_the_waits() -> None:
    waits = set()
    for _ in range(20):
        fake = FakeTime()
        client = make_client(Script(httpx.Response(500), httpx.Response(200)), fake)
        client.request("GET", "/x")
        waits.add(fake.sleeps[0])
    assert len(waits) > 1


def test_used_up_attempts_raise_a_transient_error_naming_the_request() -> None:
    script = Script(httpx.Response(502))
    fake = FakeTime()
    client = make_client(script, fake, max_attempts=3)

    with pytest.raises(TransientDestinationError) as caught:
        client.request("DELETE", "/lists/9?token=hush", records=5)

    message = str(caught.value)
    assert "acme" in message and "DELETE /lists/9" in message and "HTTP 502" in message
    assert "3 attempts" in message
    assert "hush" not in message
    assert caught.value.retry_after is None
    assert len(script.requests) == 3 and len(fake.sleeps) == 2


def test_statuses_outside_the_retry_set_are_not_retried() -> None:
    script = Script(httpx.Response(503), httpx.Response(200))
    client = make_client(script, retry_statuses=frozenset({429}))

    assert client.request("GET", "/x").status_code == 503
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
)
def test_timeouts_and_dropped_connections_are_retried(error: Exception) -> None:
    script = Script(error, httpx.Response(200))
    fake = FakeTime()
    client = make_client(script, fake)

    assert client.request("POST", "/contacts").status_code == 200
    assert len(script.requests) == 2 and len(fake.sleeps) == 1


def test_a_timeout_on_every_attempt_names_the_error() -> None:
    client = make_client(Script(httpx.ReadTimeout("read timed out")), max_attempts=2)

    with pytest.raises(TransientDestinationError, match="ReadTimeout"):
        client.request("POST", "/contacts")


def test_requests_that_cannot_be_sent_are_not_retried() -> None:
    script = Script(httpx.UnsupportedProtocol("no such scheme"))
    client = make_client(script)

    with pytest.raises(DestinationError, match="could not be sent") as caught:
        client.request("GET", "/x")
    assert not isinstance(caught.value, TransientDestinationError)
    assert len(script.requests) == 1


# -- Retry-After and the rate limiter ------------------------------------------------------


def test_retry_after_seconds_is_the_wait() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200))
    fake = FakeTime()
    client = make_client(script, fake)

    client.request("POST", "/contacts")

    assert sum(fake.sleeps) == pytest.approx(3.0)
    assert fake.sleeps[0] == 3.0


def test_retry_after_http_date_is_the_wait() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    script = Script(httpx.Response(503, headers={"Retry-After": later}), httpx.Response(200))
    fake = FakeTime()
    client = make_client(script, fake)

    client.request("POST", "/contacts")

    assert 15.0 < fake.sleeps[0] <= 20.0


def test_a_retry_after_longer_than_backoff_max_is_handed_to_the_engine() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "600"}))
    fake = FakeTime()
    client = make_client(script, fake, backoff_max=60.0)

    with pytest.raises(TransientDestinationError) as caught:
        client.request("POST", "/contacts")

    assert caught.value.retry_after == 600.0
    assert "600 s" in (caught.value.hint or "")
    assert len(script.requests) == 1 and fake.sleeps == []


def test_retry_after_holds_back_the_clients_next_request() -> None:
    script = Script(
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(200),
    )
    fake = FakeTime()
    client = make_client(script, fake, max_attempts=1)

    with pytest.raises(TransientDestinationError) as caught:
        client.request("POST", "/a")
    assert caught.value.retry_after == 7.0
    assert fake.sleeps == []

    client.request("POST", "/b")  # say, from another thread: it waits out the hold
    assert fake.sleeps == [7.0]


def wait_header(response: httpx.Response) -> float | None:
    """A vendor signal for the throttle tests: the wait named in an `X-Wait` header."""
    value = response.headers.get("X-Wait")
    return float(value) if value else None


def test_a_vendors_throttle_signal_stands_in_for_a_missing_retry_after() -> None:
    script = Script(httpx.Response(429, headers={"X-Wait": "4"}), httpx.Response(200))
    fake = FakeTime()
    client = make_client(script, fake, throttle=wait_header)

    assert client.request("POST", "/a").status_code == 200
    assert fake.sleeps == [4.0]


def test_retry_after_wins_over_a_vendors_throttle_signal() -> None:
    script = Script(
        httpx.Response(429, headers={"Retry-After": "2", "X-Wait": "9"}), httpx.Response(200)
    )
    fake = FakeTime()
    client = make_client(script, fake, throttle=wait_header)

    client.request("POST", "/a")
    assert fake.sleeps == [2.0]


def test_a_spent_window_on_a_success_holds_the_next_request() -> None:
    script = Script(httpx.Response(200, headers={"X-Wait": "5"}), httpx.Response(200))
    fake = FakeTime()
    client = make_client(script, fake, throttle=wait_header)

    client.request("POST", "/a")
    assert fake.sleeps == []
    script.steps = [httpx.Response(200)]
    client.request("POST", "/b")
    assert fake.sleeps == [5.0]


def test_seconds_until_epoch() -> None:
    assert seconds_until_epoch("1000", now=990.0) == 10.0
    assert seconds_until_epoch("1000", now=1005.0) == 0.0
    assert seconds_until_epoch("soon", now=0.0) is None
    assert seconds_until_epoch(None) is None


def test_a_long_hold_fails_other_requests_fast_without_sending_them() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "300"}), httpx.Response(200))
    fake = FakeTime()
    client = make_client(script, fake, backoff_max=60.0)
    with pytest.raises(TransientDestinationError):
        client.request("POST", "/a")

    fake.now += 100.0
    with pytest.raises(TransientDestinationError, match="was not sent") as caught:
        client.request("POST", "/b")

    assert caught.value.retry_after == pytest.approx(200.0)
    assert len(script.requests) == 1 and fake.sleeps == []
    fake.now += 200.0
    assert client.request("POST", "/c").status_code == 200


def test_rate_limit_spaces_requests_after_the_burst() -> None:
    fake = FakeTime()
    client = make_client(Script(httpx.Response(200)), fake, rate_limit=RateLimit(2, 1.0))
    start = fake.now

    for _ in range(6):
        client.request("GET", "/x")

    assert fake.sleeps == pytest.approx([0.5, 0.5, 0.5, 0.5])
    assert fake.now - start == pytest.approx(2.0)


def test_rate_limit_refills_while_idle() -> None:
    fake = FakeTime()
    client = make_client(Script(httpx.Response(200)), fake, rate_limit=RateLimit(2, 1.0))
    client.request("GET", "/x")
    client.request("GET", "/x")

    fake.now += 10.0
    client.request("GET", "/x")
    client.request("GET", "/x")

    assert fake.sleeps == []


def test_rate_limit_is_shared_by_threads() -> None:
    # The clock stands still, so each request's wait is exactly its place in the queue.
    class StillTime(FakeTime):
        def sleep(self, seconds: float) -> None:
            with self._lock:
                self.sleeps.append(seconds)

    fake = StillTime()
    script = Script(httpx.Response(200))
    client = make_client(script, fake, rate_limit=RateLimit(1, 1.0))

    def work() -> None:
        for _ in range(3):
            client.request("POST", "/x")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(script.requests) == 12
    assert sorted(fake.sleeps) == pytest.approx([float(n) for n in range(1, 12)])


# -- logging -------------------------------------------------------------------------------


def test_bodies_only_at_debug_and_credentials_redacted(caplog: pytest.LogCaptureFixture) -> None:
    script = Script(httpx.Response(200, json={"answer": "visible-response"}))
    client = make_client(
        script,
        headers={"Authorization": "Bearer tok-123", "X-Api-Key": "key-456", "X-Plain": "p"},
    )

    with caplog.at_level(logging.INFO, logger="corral.destinations.http"):
        client.request("POST", "/c", json={"email": "visible-body"})
    assert "visible-body" not in caplog.text and "visible-response" not in caplog.text

    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="corral.destinations.http"):
        client.request("POST", "/c", json={"email": "visible-body"})
    assert "visible-body" in caplog.text and "visible-response" in caplog.text
    assert "tok-123" not in caplog.text and "key-456" not in caplog.text
    assert "[redacted]" in caplog.text and "'x-plain': 'p'" in caplog.text
    assert script.requests[-1].headers["Authorization"] == "Bearer tok-123"


def test_debug_bodies_redact_credential_fields(caplog: pytest.LogCaptureFixture) -> None:
    token = httpx.Response(200, json={"access_token": "at-secret", "expires_in": 3599})
    client = make_client(Script(token))
    form = b"grant_type=refresh_token&client_secret=cs-secret&refresh_token=rt-secret"

    with caplog.at_level(logging.DEBUG, logger="corral.destinations.http"):
        client.request(
            "POST",
            "/token",
            content=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    assert "grant_type=refresh_token" in caplog.text and "3599" in caplog.text
    for secret in ("cs-secret", "rt-secret", "at-secret"):
        assert secret not in caplog.text


def test_auth_is_applied_to_every_attempt() -> None:
    script = Script(httpx.Response(500), httpx.Response(200))
    client = make_client(script, auth=httpx.BasicAuth("user", "pw"))

    client.request("GET", "/x")

    assert all(r.headers["Authorization"].startswith("Basic ") for r in script.requests)


# -- against a real local server -----------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeServer]:
    yield from serve()


def real_client(server: FakeServer, **options: object) -> HttpClient:
    settings: dict[str, object] = {"timeout": 2.0, "backoff_base": 0.01, "backoff_max": 2.0}
    settings.update(options)
    return HttpClient(destination="fake", base_url=server.url, **settings)  # type: ignore[arg-type]


def test_real_server_records_what_was_sent(server: FakeServer) -> None:
    client = real_client(server, headers={"Authorization": "Bearer t"})

    response = client.request("POST", "/hook?x=1", json={"a": 1}, records=1)

    assert response.json() == {"ok": True}
    [seen] = server.requests
    assert (seen.method, seen.path, seen.json()) == ("POST", "/hook?x=1", {"a": 1})
    assert seen.headers["authorization"] == "Bearer t"
    client.close()


def test_real_server_429_with_retry_after_waits_then_succeeds(server: FakeServer) -> None:
    server.enqueue(Reply.rate_limited(retry_after="1"))
    client = real_client(server)

    started = time.monotonic()
    assert client.request("POST", "/hook").status_code == 200
    elapsed = time.monotonic() - started

    assert len(server.requests) == 2
    assert elapsed >= 0.9
    client.close()


def test_real_server_5xx_then_success(server: FakeServer) -> None:
    server.enqueue(Reply.server_error(500), Reply.server_error(503))
    client = real_client(server)

    assert client.request("GET", "/x").json() == {"ok": True}
    assert len(server.requests) == 3
    client.close()


def test_real_server_outage_raises_transient_after_max_attempts(server: FakeServer) -> None:
    server.respond_with(Reply.server_error(503))
    client = real_client(server, max_attempts=3)

    with pytest.raises(TransientDestinationError, match="HTTP 503"):
        client.request("GET", "/x")
    assert len(server.requests) == 3
    client.close()


def test_real_server_slower_than_the_timeout_is_retried(server: FakeServer) -> None:
    server.enqueue(Reply.slow(1.5))
    client = real_client(server, timeout=0.3)

    assert client.request("POST", "/hook").status_code == 200
    assert len(server.requests) == 2
    client.close()


def test_real_server_always_too_slow_raises_a_timeout(server: FakeServer) -> None:
    server.respond_with(Reply.slow(1.0))
    client = real_client(server, timeout=0.2, max_attempts=2)

    with pytest.raises(TransientDestinationError, match="Timeout"):
        client.request("POST", "/hook")
    client.close()


def test_real_server_truncated_body_is_retried(server: FakeServer) -> None:
    server.enqueue(Reply.truncated())
    client = real_client(server)

    assert client.request("POST", "/hook").json() == {"ok": True}
    assert len(server.requests) == 2
    client.close()


def test_real_server_malformed_body_is_returned_to_the_caller(server: FakeServer) -> None:
    server.enqueue(Reply.malformed())
    client = real_client(server)

    response = client.request("POST", "/hook")

    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    client.close()


def test_real_server_per_row_answers_from_a_responder(server: FakeServer) -> None:
    def per_row(request: RecordedRequest) -> Reply:
        rows = request.json()["rows"]
        return Reply.json({"results": [{"id": r, "ok": r % 2 == 0} for r in rows]}, 207)

    server.respond_with(per_row)
    client = real_client(server)

    answer = client.request("POST", "/rows", json={"rows": [1, 2, 3]}).json()

    assert answer == {
        "results": [{"id": 1, "ok": False}, {"id": 2, "ok": True}, {"id": 3, "ok": False}]
    }
    client.close()


def test_real_server_rate_limit_across_threads(server: FakeServer) -> None:
    client = real_client(server, rate_limit=RateLimit(2, 0.2))  # 10 per second, bursts of 2
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                client.request("POST", "/hook")
        except BaseException as error:
            errors.append(error)

    started = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    assert errors == []
    assert len(server.requests) == 12
    assert elapsed >= 0.9  # 10 requests past the burst at 10 per second
    client.close()


def test_connection_refused_is_transient() -> None:
    with FakeServer() as server:
        url = server.url
    client = HttpClient(destination="gone", base_url=url, max_attempts=2, backoff_max=0.05)

    with pytest.raises(TransientDestinationError, match="ConnectError"):
        client.request("GET", "/x")
    client.close()
