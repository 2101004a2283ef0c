"""The HTTP layer every SaaS destination sends through.

`HttpClient` wraps one `httpx.Client` and adds what every vendor API needs:

- a token-bucket rate limit shared by all threads that use the client;
- retries on 429, 5xx, timeouts and dropped connections, with exponential backoff and
  full jitter (a random wait between 0 and `min(backoff_max, backoff_base * 2**n)`);
- `Retry-After` honoured, as delta seconds or an HTTP-date, both before this request's
  next attempt and in the rate limiter, so the client's other threads hold back too.
  A wait longer than `backoff_max` is not slept through: the client gives up at once and
  hands the wait to the engine, which retries those rows later;
- a destination's own rate-limit signals (`throttle`): vendors that name the wait in other
  headers or in the body (HubSpot's policy names, `X-RateLimit-Reset` epochs, Meta's usage
  headers) pass a function that reads it from any response. On a retryable answer its wait
  stands in for a missing `Retry-After`; on any other answer it holds the client's threads
  back, so a vendor that says its window is spent is not called again until it has passed;
- errors by who must act: 401 and 403 raise `DestinationError` (fix the credentials);
  retries used up raise `TransientDestinationError` carrying the wait the vendor asked
  for; any other answer, including other 4xx, is returned, because only the destination
  knows which rows a 400 or 422 rejects.

Logging policy (logger `corral.destinations.http`): one INFO line per request, after its
last attempt, with destination, method, path, status, records, attempts and
milliseconds; one WARNING per retry; request and response bodies only at DEBUG, with
credential headers and the credential fields of form and JSON bodies redacted. Query
strings are never logged (they often carry keys); paths are, so keep secrets out of them.

Tests inject an `httpx.MockTransport` and fake `sleep` and `clock` functions:

>>> client = HttpClient(
...     destination="example",
...     base_url="https://api.example.com",
...     transport=httpx.MockTransport(lambda request: httpx.Response(200, json={})),
... )
>>> client.request("POST", "/contacts", records=2, json=[{}, {}]).status_code
200
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from corral.destinations.base import RateLimit
from corral.errors import DestinationError, TransientDestinationError

logger = logging.getLogger(__name__)

DEFAULT_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# Failures of the exchange itself that may pass: the request may or may not have reached
# the vendor, so retrying relies on every destination's calls being idempotent.
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

# Header names, and form or JSON field names in bodies, whose values are credentials;
# matched case-insensitively by substring.
_SECRET_HEADER = re.compile(r"auth|cookie|token|secret|key|signature|password", re.IGNORECASE)
_SECRET_FIELD = re.compile(r"secret|password|token|api_?key|authorization|credential", re.I)
_REDACTED = "[redacted]"

_DELTA_SECONDS = re.compile(r"^\d+(\.\d+)?$")
# A vendor's own reading of a response: seconds every request should wait, or None.
Throttle = Callable[[httpx.Response], float | None]
_DEBUG_BODY_CHARS = 2_000


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header, or None when it is absent or unreadable.

    The header holds delta seconds (RFC 9110 section 10.2.3) or an HTTP-date; a date in
    the past means no wait.

    >>> parse_retry_after("120")
    120.0
    >>> noon = datetime(2015, 10, 21, 12, 0, tzinfo=UTC)
    >>> parse_retry_after("Wed, 21 Oct 2015 12:00:10 GMT", now=noon)
    10.0
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if _DELTA_SECONDS.match(text):
        return float(text)

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are always GMT
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def seconds_until_epoch(value: str | None, now: float | None = None) -> float | None:
    """Seconds until a Unix time given in a header (such as `X-RateLimit-Reset`), or None.

    A time in the past means no wait.

    >>> seconds_until_epoch("1392815263", now=1392815258.0)
    5.0
    """
    if value is None or not _DELTA_SECONDS.match(value.strip()):
        return None
    now = time.time() if now is None else now
    return max(0.0, float(value) - now)


class _Limiter:
    """A token bucket that also holds every caller back until a `Retry-After` has passed.

    Each call reserves a token, letting the balance go negative: the deficit divided by the
    refill rate is how long the caller must wait. Reserving under the lock and sleeping
    outside it keeps threads from spinning and makes the waits add up exactly.
    """

    def __init__(
        self,
        rate_limit: RateLimit | None,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._capacity = float(rate_limit.requests) if rate_limit else 0.0
        self._rate = rate_limit.requests / rate_limit.per_seconds if rate_limit else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self._capacity
        self._refilled_at = clock()
        self._held_until = float("-inf")

    def acquire(self, longest: float) -> float:
        """Wait for a turn and return 0, or return at once the time a hold has left when
        that is longer than `longest`: blocking a thread that long helps no one."""
        with self._lock:
            now = self._clock()
            held = self._held_until - now
            if held > longest:
                return held
            wait = max(self._reserve(now), held)
        if wait > 0:
            self._sleep(wait)

        # A Retry-After that arrived while we slept holds us too (checked once, not looped,
        # so a clock that stands still in tests cannot spin forever).
        with self._lock:
            held = self._held_until - self._clock()
        if held > longest:
            return held
        if held > 0:
            self._sleep(held)
        return 0.0

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._held_until = max(self._held_until, self._clock() + seconds)

    def _reserve(self, now: float) -> float:
        if not self._rate:
            return 0.0
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._refilled_at = now
        self._tokens -= 1.0
        return -self._tokens / self._rate if self._tokens < 0 else 0.0


class HttpClient:
    """A thread-safe HTTP client for one destination; see the module docstring for policy.

    `destination` names the vendor in logs and errors. `base_url` prefixes every `path`.
    `timeout` applies to connecting, writing, reading and waiting for a pooled connection.
    `max_attempts` counts the first try. `throttle` reads a vendor's own rate-limit signals
    (see the module docstring). `transport`, `sleep` and `clock` are for tests.
    """

    def __init__(
        self,
        *,
        destination: str,
        base_url: str,
        rate_limit: RateLimit | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES,
        throttle: Throttle | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts counts the first try, so it must be at least 1")
        self.destination = destination
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._retry_statuses = retry_statuses
        self._throttle = throttle
        self._sleep = sleep
        self._clock = clock
        self._random = random.Random()
        self._limiter = _Limiter(rate_limit, clock, sleep)
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers=dict(headers or {}),
            auth=auth,
            transport=transport,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        records: int = 0,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send one request, retrying what may pass; `records` is only for the log line.

        Returns the response for 2xx, 3xx and 4xx other than 401 and 403. Raises
        `DestinationError` for 401 and 403 and for requests that cannot be sent at all,
        and `TransientDestinationError` when the attempts are used up.
        """
        request = self._client.build_request(
            method,
            path,
            json=json,
            params=dict(params) if params else None,
            headers=headers,
            content=content,
        )
        shown = path.split("?", 1)[0] or "/"
        self._debug_request(request, shown)
        started = self._clock()

        attempt, outcome, retry_after = 0, "", None
        while attempt < self._max_attempts:
            held = self._limiter.acquire(longest=self._backoff_max)
            if held:
                outcome, retry_after = f"a Retry-After that holds requests {held:.1f} s more", held
                break
            attempt += 1
            response, outcome, retry_after = self._attempt(request, shown)
            if response is not None:
                self._finish(method, shown, outcome, records, attempt, started)
                return self._checked(response, method, shown)

            if attempt == self._max_attempts:
                break
            wait = retry_after if retry_after is not None else self._backoff(attempt)
            if wait > self._backoff_max:
                break  # too long to block a thread: the engine retries these rows later
            logger.warning(
                "%s %s %s: %s on attempt %d of %d; retrying in %.2f s",
                self.destination,
                method,
                shown,
                outcome,
                attempt,
                self._max_attempts,
                wait,
            )
            self._sleep(wait)

        self._finish(method, shown, outcome, records, attempt, started)
        raise self._gave_up(method, shown, attempt, outcome, retry_after)

    def close(self) -> None:
        self._client.close()

    def _attempt(
        self, request: httpx.Request, path: str
    ) -> tuple[httpx.Response | None, str, float | None]:
        """One exchange: (the response if it is final, a description, Retry-After seconds)."""
        try:
            response = self._client.send(request)
        except _RETRYABLE_ERRORS as error:
            return None, f"{type(error).__name__} ({error})", None
        except httpx.HTTPError as error:
            raise DestinationError(
                f"{request.method} {path} could not be sent: {error}",
                where=self.destination,
                hint="check the destination's URL and network settings",
            ) from error

        self._debug_response(response)
        outcome = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        throttled = self._throttle(response) if self._throttle else None
        if response.status_code not in self._retry_statuses:
            if throttled:
                logger.info(
                    "%s %s %s: the vendor's rate limit is spent; holding requests %.1f s",
                    self.destination,
                    request.method,
                    path,
                    throttled,
                )
                self._limiter.hold(throttled)
            return response, outcome, None

        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            retry_after = throttled
        if retry_after is not None:
            self._limiter.hold(retry_after)
        return None, outcome, retry_after

    def _gave_up(
        self, method: str, path: str, attempts: int, outcome: str, retry_after: float | None
    ) -> TransientDestinationError:
        if attempts == 0:
            message = f"{method} {path} was not sent: {outcome}"
        else:
            plural = "s" if attempts > 1 else ""
            message = f"{method} {path} failed after {attempts} attempt{plural}: {outcome}"
        if retry_after is not None:
            hint = f"the destination asked to wait {retry_after:.0f} s; Corral retries later"
        else:
            hint = "the destination may be down or overloaded; Corral retries later"
        return TransientDestinationError(
            message, where=self.destination, hint=hint, retry_after=retry_after
        )

    def _checked(self, response: httpx.Response, method: str, path: str) -> httpx.Response:
        if response.status_code in (401, 403):
            raise DestinationError(
                f"{method} {path} was refused with HTTP {response.status_code}",
                where=self.destination,
                hint="check the destination's credentials (token, API key or secret) "
                "and that they grant access to this resource",
            )
        return response

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
        return self._random.uniform(0.0, ceiling)

    def _finish(
        self, method: str, path: str, outcome: str, records: int, attempts: int, started: float
    ) -> None:
        milliseconds = round((self._clock() - started) * 1000)
        logger.info(
            "%s %s %s -> %s, %d records, %d attempts, %d ms",
            self.destination,
            method,
            path,
            outcome,
            records,
            attempts,
            milliseconds,
            extra={
                "destination": self.destination,
                "method": method,
                "path": path,
                "status": outcome,
                "records": records,
                "attempts": attempts,
                "milliseconds": milliseconds,
            },
        )

    def _debug_request(self, request: httpx.Request, path: str) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s %s request headers %s body %s",
                self.destination,
                request.method,
                path,
                redacted(request.headers),
                _loggable_body(request.content, request.headers.get("Content-Type", "")),
            )

    def _debug_response(self, response: httpx.Response) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s answered HTTP %d body %s",
                self.destination,
                response.status_code,
                _loggable_body(response.content, response.headers.get("Content-Type", "")),
            )


def redacted(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with every credential's value replaced, for logs."""
    return {
        name: _REDACTED if _SECRET_HEADER.search(name) else value for name, value in headers.items()
    }


def _loggable_body(body: bytes, content_type: str) -> str:
    """The body for a DEBUG line: credential fields of forms and JSON redacted, cut short."""
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        if kind == "application/x-www-form-urlencoded":
            pairs = parse_qsl(body.decode(), keep_blank_values=True)
            text = urlencode([(k, _REDACTED if _SECRET_FIELD.search(k) else v) for k, v in pairs])
        elif kind == "application/json" or kind.endswith("+json"):
            text = json.dumps(_redact_fields(json.loads(body)), ensure_ascii=False)
        else:
            text = body.decode("utf-8", errors="replace")
    except ValueError:  # not what it claims to be: show it as it came
        text = body.decode("utf-8", errors="replace")
    return text[:_DEBUG_BODY_CHARS] + ("..." if len(text) > _DEBUG_BODY_CHARS else "")


def _redact_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _REDACTED if _SECRET_FIELD.search(str(key)) else _redact_fields(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact_fields(item) for item in value]
    return value
