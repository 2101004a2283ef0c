"""A generic webhook: each batch is POSTed as one signed JSON document to a URL you own.

The payload, the signature and the answers a receiver may give are described in
docs/destinations/webhook.md; in short:

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <batch_id>
    X-Corral-Timestamp: <unix seconds>
    X-Corral-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>

    {"sync": ..., "operation": "add", "mode": "upsert", "batch_id": "...",
     "records": [{"key": "42", "fields": {"email": "ada@example.com"}}]}

A receiver checks the signature with `verify_signature`, which needs nothing but the
standard library.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from corral.destinations.base import (
    Batch,
    Catalog,
    CheckResult,
    Job,
    Mode,
    RateLimit,
    RowResult,
)
from corral.destinations.http import DEFAULT_RETRY_STATUSES, HttpClient
from corral.errors import DestinationError, InternalError, TransientDestinationError

logger = logging.getLogger(__name__)

SIGNATURE_VERSION = "v1"
MAX_BATCH_SIZE = 10_000
_EXCERPT_CHARS = 200


class WebhookConfig(BaseModel):
    """Settings of a webhook destination, as written under `config:` in its YAML file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="http(s) URL that receives a POST per batch")
    secret: SecretStr | None = Field(
        default=None, description="shared secret; when set, every request carries an HMAC signature"
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="extra headers sent with every request"
    )
    sync: str | None = Field(
        default=None, description="label sent as `sync` in every payload, to tell syncs apart"
    )
    batch_size: int = Field(default=500, ge=1, le=MAX_BATCH_SIZE)
    concurrency: int = Field(default=1, ge=1, le=32, description="batches in flight at once")
    requests_per_second: float | None = Field(default=None, gt=0)
    timeout: float = Field(default=30.0, gt=0, le=300, description="seconds per request")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    def rate_limit(self) -> RateLimit | None:
        rate = self.requests_per_second
        if rate is None:
            return None
        if rate == int(rate):
            return RateLimit(int(rate), 1.0)
        return RateLimit(1, 1.0 / rate)


class WebhookDestination:
    """POSTs batches to `config.url`; see the module docstring for the wire format.

    The class's `catalog` holds the defaults; each instance carries a copy with its own
    batch size, concurrency and rate limit, so the engine should read
    `destination.catalog`.
    """

    catalog: ClassVar[Catalog] = Catalog(
        name="webhook",
        title="Webhook",
        modes=frozenset(Mode),
        config=WebhookConfig,
        batch_size=500,
        docs="docs/destinations/webhook.md",
    )

    def __init__(
        self, config: WebhookConfig, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.config = config
        self._transport = transport
        self._http: HttpClient | None = None
        self._mode: Mode | None = None
        # An instance attribute shadows the ClassVar; assigning through __dict__ says so.
        self.__dict__["catalog"] = dataclasses.replace(
            type(self).catalog,
            batch_size=config.batch_size,
            concurrency=config.concurrency,
            rate_limit=config.rate_limit(),
        )
        parts = urlsplit(config.url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")

    def open(self, mode: Mode, fields: Sequence[str]) -> None:
        self._mode = mode
        if self._http is None:
            self._http = self._client(max_attempts=5)

    def send(self, batch: Batch) -> list[RowResult] | Job:
        if self._http is None or self._mode is None:
            raise InternalError("WebhookDestination.send was called before open")
        results: list[RowResult] = []
        size = self.config.batch_size
        for start in range(0, len(batch.records), size):
            chunk = Batch(batch.operation, batch.records[start : start + size])
            results.extend(self._deliver(self._http, self._mode, chunk))
        return results

    def poll(self, job: Job) -> list[RowResult] | Job:
        raise InternalError("the webhook destination delivers synchronously and has no jobs")

    def check(self) -> CheckResult:
        """Whether the URL answers a HEAD; a receiver that only takes POST still counts."""
        client = self._client(max_attempts=1, retry_statuses=frozenset())
        try:
            response = client.request("HEAD", self._path)
        except DestinationError as error:
            hint = f"; {error.hint}" if error.hint else ""
            return CheckResult(False, f"{self._origin} cannot be used: {error.message}{hint}")
        finally:
            client.close()

        # 501 is how servers without HEAD support say so: they are up all the same.
        status = response.status_code
        ok = status < 500 or status == 501
        return CheckResult(ok, f"{self._origin} answered HEAD with HTTP {status}")

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _client(
        self, *, max_attempts: int, retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    ) -> HttpClient:
        secret = self.config.secret
        return HttpClient(
            destination="webhook",
            base_url=self._origin,
            rate_limit=self.config.rate_limit(),
            timeout=self.config.timeout,
            max_attempts=max_attempts,
            retry_statuses=retry_statuses,
            headers={name: value.get_secret_value() for name, value in self.config.headers.items()},
            auth=_Signature(secret.get_secret_value()) if secret else None,
            transport=self._transport,
        )

    def _deliver(self, http: HttpClient, mode: Mode, batch: Batch) -> list[RowResult]:
        keys = [record.key for record in batch.records]
        batch_id = compute_batch_id(self.config.sync, mode, batch)
        body = {
            "sync": self.config.sync,
            "operation": batch.operation.value,
            "mode": mode.value,
            "batch_id": batch_id,
            "records": [{"key": r.key, "fields": _wire_fields(r.fields)} for r in batch.records],
        }
        content = _dumps(body)
        try:
            response = http.request(
                "POST",
                self._path,
                records=len(keys),
                content=content,
                headers={"Content-Type": "application/json", "Idempotency-Key": batch_id},
            )
        except TransientDestinationError as error:
            return [RowResult.retry(key, error.message, error.retry_after) for key in keys]
        return read_results(keys, response)


def read_results(keys: Sequence[str], response: httpx.Response) -> list[RowResult]:
    """One result per key from the receiver's answer (the rules are in the docs)."""
    status = response.status_code
    if 200 <= status < 300:
        return _read_success(keys, response)
    if 300 <= status < 400:
        where = response.headers.get("Location", "elsewhere")
        reason = f"HTTP {status}: the receiver redirects to {where}; update the webhook's url"
        return [RowResult.rejected(key, reason) for key in keys]
    excerpt = _excerpt(response)
    reason = f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}"
    if 400 <= status < 500:
        return [RowResult.rejected(key, reason) for key in keys]
    return [RowResult.retry(key, reason) for key in keys]


def _read_success(keys: Sequence[str], response: httpx.Response) -> list[RowResult]:
    if not response.content.strip() or not _is_json(response):
        return [RowResult.accepted(key) for key in keys]
    try:
        answer = response.json()
    except ValueError:
        return [RowResult.retry(key, "malformed response") for key in keys]
    if not isinstance(answer, dict) or "results" not in answer:
        return [RowResult.accepted(key) for key in keys]

    rows = answer["results"]
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        reason = "malformed response: `results` is not a list of objects"
        return [RowResult.retry(key, reason) for key in keys]
    by_key = {str(row.get("key")): row for row in rows}
    unknown = by_key.keys() - set(keys)
    if unknown:
        logger.warning("the webhook answered for %d keys it was not sent", len(unknown))
    return [_row_result(key, by_key.get(key)) for key in keys]


def _row_result(key: str, row: Mapping[str, Any] | None) -> RowResult:
    if row is None:
        return RowResult.retry(key, "missing from response")
    status = row.get("status")
    reason = row.get("reason")
    if status == "accepted":
        return RowResult.accepted(key)
    if status == "rejected":
        return RowResult.rejected(key, str(reason) if reason else "rejected by the receiver")
    if status == "retry":
        after = row.get("retry_after")
        seconds = None if isinstance(after, bool) else _seconds(after)
        return RowResult.retry(
            key, str(reason) if reason else "the receiver asked to retry", seconds
        )
    return RowResult.retry(key, f"malformed response: unknown status {status!r}")


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def compute_batch_id(sync: str | None, mode: Mode, batch: Batch) -> str:
    """A stable id for a batch's content: the same records (in any order) give the same id.

    It covers the fields as well as the keys, so a later change to the same keys is a new
    batch rather than a duplicate that a receiver would drop.
    """
    records = sorted(
        ((r.key, _wire_fields(r.fields)) for r in batch.records), key=lambda pair: pair[0]
    )
    canonical = {"sync": sync, "mode": mode.value, "operation": batch.operation.value}
    digest = hashlib.sha256(_dumps({**canonical, "records": records}, sort_keys=True))
    return digest.hexdigest()[:32]


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The `X-Corral-Signature` value for a body sent at `timestamp` (unix seconds)."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify_signature(
    secret: str | bytes,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    tolerance: float | None = 300.0,
    now: float | None = None,
) -> bool:
    """Whether `header` (X-Corral-Signature) signs `body` sent at `timestamp`.

    Pass the raw request body, before any JSON parsing. `tolerance` rejects timestamps
    more than that many seconds from `now` (default: the current time), which stops
    replays of old requests; None turns the check off. The header may list several
    comma-separated signatures (as during a secret rotation); one match is enough.

    >>> body = b'{"records": []}'
    >>> verify_signature("s3cret", "1700000000", body, sign("s3cret", "1700000000", body),
    ...                  tolerance=None)
    True
    """
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    now = time.time() if now is None else now
    if tolerance is not None and abs(now - int(timestamp)) > tolerance:
        return False

    expected = sign(secret, timestamp, body)
    candidates = (part.strip() for part in header.split(","))
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


class _Signature(httpx.Auth):
    """Signs each attempt afresh, so a retried request carries a current timestamp."""

    requires_request_body = True

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        timestamp = str(int(self._clock()))
        request.headers["X-Corral-Timestamp"] = timestamp
        request.headers["X-Corral-Signature"] = sign(self._secret, timestamp, request.content)
        yield request


def _dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    text = json.dumps(
        value, default=_jsonable, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys
    )
    return text.encode()


def _jsonable(value: Any) -> Any:
    """JSON for the values a warehouse hands back; documented in webhook.md."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact, unlike a float
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)  # sorted, so the batch id does not depend on hashing
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return str(value)


def _is_json(response: httpx.Response) -> bool:
    kind: str = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:_EXCERPT_CHARS] + ("..." if len(text) > _EXCERPT_CHARS else "")


def _wire_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    # JSON has no NaN or infinity; a float that is not finite is sent as null.
    return {
        name: None if isinstance(value, float) and not math.isfinite(value) else value
        for name, value in fields.items()
    }
