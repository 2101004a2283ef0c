"""Braze: user attributes through `/users/track`.

Each row becomes one user attributes object, identified by `external_id`, else by `email`,
else by `phone`; the other fields are written as attributes (standard ones such as
`first_name` by their Braze names, every other name as a custom attribute).

upsert      writes the attributes, creating users Braze does not know
update      writes the attributes with `_update_existing_only`, so unknown users are skipped;
            Braze names no skipped object in its answer (its "Track users" page documents
            only counts and minor errors), so such a row counts as delivered without effect
mirror      as upsert; a removal sets every attribute Corral delivered for the row to null
membership  as upsert, plus a boolean custom attribute (`membership_attribute`) set to
            true; a removal sets it to false on existing users only

Removals never call `/users/delete`: deleting a Braze user erases its history and cannot
be undone, and a row leaving an audience says nothing about the person leaving the
business. Segments in Braze filter on the membership attribute instead.

Braze answers a request with some bad objects with "success" and a list of minor errors,
each naming the object's index in the request: those rows are rejected with Braze's
message. A 400 whose errors name indexes rejects those rows and sends the others again.
When the answer's `attributes_processed` counts fewer objects than were sent without an
error, a WARNING says so: the difference cannot be traced to rows.

Limits (braze.com/docs/api/endpoints/user_data/post_user_track and /api/api_limits):
75 objects per request across attributes, events and purchases; 3,000 requests per 3 s.
A 429 without `Retry-After` is waited out until the `X-RateLimit-Reset` time (Unix seconds)
that every answer carries; a success that leaves `X-RateLimit-Remaining` at 0 holds the
next request until then too.

>>> BrazeDestination.catalog.batch_size
75
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from corral.destinations.base import (
    Batch,
    Catalog,
    CheckResult,
    Identifier,
    Job,
    Mode,
    Operation,
    RateLimit,
    Record,
    RowResult,
)
from corral.destinations.http import HttpClient, seconds_until_epoch
from corral.errors import CorralError, DefinitionError, DestinationError

logger = logging.getLogger(__name__)

MAX_OBJECTS = 75
# Identifier fields in the order a row is identified by.
IDENTIFIERS = ("external_id", "email", "phone")
_NO_IDENTIFIER = "the row has no external_id, email or phone"
_NO_DATA = "Valid data must be provided"  # the start of Braze's answer to an empty request


class BrazeConfig(BaseModel):
    """Settings of a Braze destination."""

    model_config = ConfigDict(extra="forbid")

    rest_endpoint: str = Field(
        description="The REST endpoint of the Braze instance, e.g. https://rest.iad-01.braze.com"
    )
    api_key: SecretStr = Field(description="A REST API key with the users.track permission")
    membership_attribute: str | None = Field(
        default=None,
        description="The boolean custom attribute that membership mode sets (true or false)",
    )

    @field_validator("rest_endpoint")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be the instance's https:// REST endpoint")
        return value.rstrip("/")


class BrazeDestination:
    """Writes Braze user attributes; membership is a boolean custom attribute."""

    catalog: ClassVar[Catalog] = Catalog(
        name="braze",
        title="Braze",
        modes=frozenset({Mode.UPSERT, Mode.UPDATE, Mode.MIRROR, Mode.MEMBERSHIP}),
        config=BrazeConfig,
        batch_size=MAX_OBJECTS,
        rate_limit=RateLimit(requests=3_000, per_seconds=3.0),
        concurrency=4,
        identifiers={
            "external_id": Identifier("external_id", "plain", hashed=False),
            "email": Identifier("email", "plain", hashed=False),
            "phone": Identifier("phone", "plain", hashed=False),
        },
        removals_first=False,
        docs="docs/destinations/braze.md",
    )

    def __init__(
        self,
        config: BrazeConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.mode = Mode.UPSERT
        self._http = HttpClient(
            destination="braze",
            base_url=config.rest_endpoint,
            rate_limit=self.catalog.rate_limit,
            headers={"Authorization": f"Bearer {config.api_key.get_secret_value()}"},
            transport=transport,
            sleep=sleep,
            clock=clock,
            throttle=braze_wait,
        )

    def open(self, mode: Mode, fields: Sequence[str]) -> None:
        if mode not in self.catalog.modes:
            raise DefinitionError(
                f"the braze destination does not support mode {mode.value!r}",
                hint="use upsert, update, mirror or membership",
            )
        if mode is Mode.MEMBERSHIP and not self.config.membership_attribute:
            raise DefinitionError(
                "membership mode needs the custom attribute that marks members",
                hint="set membership_attribute in the destination's config",
            )
        if not set(IDENTIFIERS) & set(fields):
            raise DefinitionError(
                "a braze sync must map at least one of: " + ", ".join(IDENTIFIERS),
                hint="map an external_id, email or phone field",
            )
        self.mode = mode

    def send(self, batch: Batch) -> list[RowResult]:
        results: list[RowResult] = []
        objects: list[tuple[str, dict[str, Any]]] = []
        for record in batch.records:
            attributes = self._attributes(record, batch.operation)
            if attributes is None:
                results.append(RowResult.rejected(record.key, _NO_IDENTIFIER))
            elif attributes:
                objects.append((record.key, attributes))
            else:  # a removal with nothing to undo
                results.append(RowResult.accepted(record.key))

        for start in range(0, len(objects), MAX_OBJECTS):
            results.extend(self._track(objects[start : start + MAX_OBJECTS]))
        return results

    def poll(self, job: Job) -> list[RowResult]:
        raise DestinationError(
            "the braze destination is synchronous and has no jobs to poll", where="braze"
        )

    def check(self) -> CheckResult:
        """Sends an empty request: Braze refuses it as empty only if the key is good."""
        try:
            response = self._http.request("POST", "/users/track", json={"attributes": []})
        except CorralError as error:
            return CheckResult(False, error.message)
        message = str(_json(response).get("message") or "")
        if response.is_success or message.startswith(_NO_DATA):
            return CheckResult(True, "connected")
        return CheckResult(False, f"Braze answered HTTP {response.status_code}: {message}")

    def close(self) -> None:
        self._http.close()

    def _attributes(self, record: Record, operation: Operation) -> dict[str, Any] | None:
        """The user attributes object for a row: None without an identifier, empty when
        there is nothing to send (a removal in a mode that never removes)."""
        if operation is Operation.REMOVE and self.mode in (Mode.UPSERT, Mode.UPDATE):
            return {}
        kind = next((k for k in IDENTIFIERS if _text(record.fields.get(k))), None)
        if kind is None:
            return None
        identity = {kind: _text(record.fields[kind])}
        # external_id is only ever an identifier in Braze, and a missing email or phone
        # must not clear the user's.
        others = {
            name: value
            for name, value in record.fields.items()
            if name not in (kind, "external_id") and not (name in IDENTIFIERS and value is None)
        }

        if operation is Operation.REMOVE:
            if self.mode is Mode.MEMBERSHIP:
                return {**identity, str(self.config.membership_attribute): False, **_ONLY}
            cleared = {name: None for name in others if name not in IDENTIFIERS}
            return {**identity, **cleared, **_ONLY} if cleared else {}

        attributes = {**identity, **{name: _plain(value) for name, value in others.items()}}
        if self.mode is Mode.MEMBERSHIP:
            attributes[str(self.config.membership_attribute)] = True
        attributes["_update_existing_only"] = self.mode is Mode.UPDATE
        return attributes

    def _track(self, objects: list[tuple[str, dict[str, Any]]]) -> list[RowResult]:
        response = self._http.request(
            "POST",
            "/users/track",
            records=len(objects),
            json={"attributes": [attributes for _, attributes in objects]},
        )
        document = _json(response)
        named = _named_objects(document, len(objects))
        if response.is_success:
            if named:
                logger.info("braze: %d of %d objects rejected", len(named), len(objects))
            _warn_if_unprocessed(document, len(objects) - len(named))
            return [
                RowResult.rejected(key, named[i]) if i in named else RowResult.accepted(key)
                for i, (key, _) in enumerate(objects)
            ]

        if response.status_code != 400 or not named:
            raise DestinationError(
                f"Braze refused /users/track with HTTP {response.status_code}: "
                + str(document.get("message") or "no reason given"),
                where="braze",
                hint="check the REST endpoint and the attribute names and types",
            )
        rejected = [RowResult.rejected(objects[i][0], reason) for i, reason in named.items()]
        rest = [item for i, item in enumerate(objects) if i not in named]
        return rejected + (self._track(rest) if rest else [])


_ONLY = {"_update_existing_only": True}


def braze_wait(response: httpx.Response) -> float | None:
    """Seconds until Braze's rate-limit window resets, when a 429 or a spent window says so."""
    spent = response.headers.get("X-RateLimit-Remaining", "").strip() == "0"
    if response.status_code != 429 and not spent:
        return None
    return seconds_until_epoch(response.headers.get("X-RateLimit-Reset"))


def _warn_if_unprocessed(document: Mapping[str, Any], sent: int) -> None:
    processed = document.get("attributes_processed")
    if isinstance(processed, int) and processed < sent:
        logger.warning(
            "braze processed %d of %d attribute objects it named no error for; the others "
            "(in update mode, users Braze does not know) count as delivered",
            processed,
            sent,
        )


def _named_objects(document: Mapping[str, Any], count: int) -> dict[int, str]:
    """Braze's minor errors by the index of the attributes object they name."""
    named: dict[int, str] = {}
    for error in document.get("errors") or []:
        if not isinstance(error, Mapping) or error.get("input_array") != "attributes":
            continue
        index = error.get("index")
        if isinstance(index, int) and 0 <= index < count:
            named.setdefault(index, str(error.get("type") or "rejected by Braze"))
    return named


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def _plain(value: Any) -> Any:
    """A JSON value for a warehouse value; Braze reads ISO 8601 strings as times."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
