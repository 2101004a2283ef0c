"""Klaviyo: profiles through bulk import jobs, and list membership.

Adds and changes go to Klaviyo's Bulk Import Profiles endpoint, an asynchronous job:
`send` answers with a `Job`, and `poll` reads the job's status and, when some profiles
failed, its import errors, whose JSON pointers name the failed profile's position in the
request. In membership mode the same job also adds the profiles to the list.

Removals from a list need Klaviyo's profile ids: `send` looks them up by email, phone
number or external id (Get Profiles with an `any(...)` filter), then removes them from the
list in one synchronous call per 1,000 ids. A profile Klaviyo does not know is not on the
list, so its row is accepted.

Limits, from the OpenAPI description of revision 2026-07-15 (`../shared/specs`):
10,000 profiles and 5 MB per import request, 100 KB per profile, 1,000 profiles per list
membership call; 10 requests/s burst and 150/min steady for every endpoint used here.
Every request names that revision in the `revision` header the description requires.

Klaviyo's limits are fixed windows per account, shared with the account's other
integrations ("Rate limits, status codes, and errors"): a 429 carries `Retry-After`, and
every other answer `RateLimit-Remaining` and `RateLimit-Reset` (seconds left in the steady
window). An answer with none remaining holds the next request until that window resets.

A field named like one of Klaviyo's profile attributes (`email`, `first_name`, ...) or
location keys (`city`, `zip`, ...) fills that attribute; every other field becomes a custom
property. A missing value (None) is left out, so Klaviyo keeps what it has.

>>> KlaviyoDestination.catalog.batch_size
10000
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

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
from corral.destinations.http import HttpClient
from corral.errors import CorralError, DefinitionError, DestinationError

logger = logging.getLogger(__name__)

REVISION = "2026-07-15"
JSON_API = "application/vnd.api+json"

MAX_PROFILES_PER_JOB = 10_000
MAX_JOB_BYTES = 5_000_000
MAX_PROFILE_BYTES = 100_000
MAX_LIST_MEMBERS_PER_CALL = 1_000
PROFILE_PAGE_SIZE = 100
# The JSON around the profiles in an import request, with room for the list relationship.
_ENVELOPE_BYTES = 400

# Identifier fields in the order `send` uses them to look a profile up.
IDENTIFIERS = ("email", "phone_number", "external_id")
_ATTRIBUTES = frozenset(
    {*IDENTIFIERS, "first_name", "last_name", "organization", "locale", "title", "image"}
)
_LOCATION = frozenset(
    {
        "address1",
        "address2",
        "city",
        "country",
        "region",
        "zip",
        "timezone",
        "latitude",
        "longitude",
        "ip",
    }
)
# "/data/attributes/profiles/data/12/attributes/email" -> 12
_PROFILE_POINTER = re.compile(r"^/data/attributes/profiles/data/(\d+)(/|$)")
_RUNNING = frozenset({"queued", "processing"})


class KlaviyoConfig(BaseModel):
    """Settings of a Klaviyo destination."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(
        description="A private API key with the profiles:read/write and lists:read/write scopes"
    )
    list_id: str | None = Field(
        default=None, description="The list that membership mode adds to and removes from"
    )
    base_url: str = Field(default="https://a.klaviyo.com", description="Klaviyo's API host")


class KlaviyoDestination:
    """Upserts Klaviyo profiles with bulk import jobs and keeps a list's members."""

    catalog: ClassVar[Catalog] = Catalog(
        name="klaviyo",
        title="Klaviyo",
        modes=frozenset({Mode.UPSERT, Mode.MEMBERSHIP}),
        config=KlaviyoConfig,
        batch_size=MAX_PROFILES_PER_JOB,
        # Burst 10/s and steady 150/min: ten calls per four seconds keeps under both.
        rate_limit=RateLimit(requests=10, per_seconds=4.0),
        concurrency=1,
        identifiers={
            "email": Identifier("email", "plain", hashed=False),
            "phone_number": Identifier("phone", "plain", hashed=False),
            "external_id": Identifier("external_id", "plain", hashed=False),
        },
        asynchronous=True,
        docs="docs/destinations/klaviyo.md",
    )

    def __init__(
        self,
        config: KlaviyoConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.mode = Mode.UPSERT
        self._http = HttpClient(
            destination="klaviyo",
            base_url=config.base_url,
            rate_limit=self.catalog.rate_limit,
            headers={
                "Authorization": f"Klaviyo-API-Key {config.api_key.get_secret_value()}",
                "revision": REVISION,
                "Accept": JSON_API,
            },
            transport=transport,
            sleep=sleep,
            clock=clock,
            throttle=klaviyo_wait,
        )

    def open(self, mode: Mode, fields: Sequence[str]) -> None:
        if mode not in self.catalog.modes:
            raise DefinitionError(
                f"the klaviyo destination does not support mode {mode.value!r}",
                hint="use upsert or membership",
            )
        if mode is Mode.MEMBERSHIP and not self.config.list_id:
            raise DefinitionError(
                "membership mode needs the Klaviyo list to keep",
                hint="set list_id in the destination's config",
            )
        if not set(IDENTIFIERS) & set(fields):
            raise DefinitionError(
                "a klaviyo sync must map at least one of: " + ", ".join(IDENTIFIERS),
                hint="map an email, phone_number or external_id field",
            )
        self.mode = mode

    def send(self, batch: Batch) -> list[RowResult] | Job:
        if batch.operation is Operation.REMOVE:
            if self.mode is not Mode.MEMBERSHIP:
                return [RowResult.accepted(r.key) for r in batch.records]  # upsert never removes
            return self._remove(batch.records)

        results: list[RowResult] = []
        parts: list[dict[str, Any]] = []
        profiles: list[tuple[str, dict[str, Any]]] = []
        for record in batch.records:
            profile, problem = _profile(record)
            if problem:
                results.append(RowResult.rejected(record.key, problem))
            else:
                profiles.append((record.key, profile))

        for chunk in _chunks(profiles):
            rejected, sent = self._import(chunk)
            results.extend(rejected)
            parts.extend(sent)
        if not parts:
            return results
        done = [[r.key, r.outcome.value, r.reason] for r in results]
        return Job(
            id=parts[0]["id"],
            keys=[r.key for r in batch.records],
            poll_after=10.0,
            data={"parts": parts, "done": done},
        )

    def poll(self, job: Job) -> list[RowResult] | Job:
        done: list[list[Any]] = [list(item) for item in job.data.get("done", [])]
        running: list[dict[str, Any]] = []
        for part in job.data["parts"]:
            results = self._finished(part)
            if results is None:
                running.append(part)
            else:
                done.extend([r.key, r.outcome.value, r.reason] for r in results)
        if running:
            return Job(
                id=running[0]["id"],
                keys=job.keys,
                poll_after=job.poll_after,
                data={"parts": running, "done": done},
            )
        return [_result(item) for item in done]

    def check(self) -> CheckResult:
        params: dict[str, str] = {"fields[list]": "name"}
        if self.config.list_id:
            params["filter"] = f'equals(id,"{self.config.list_id}")'
        try:
            response = self._http.request("GET", "/api/lists", params=params)
        except CorralError as error:
            return CheckResult(False, error.message)
        if response.status_code != 200:
            return CheckResult(False, f"Klaviyo answered HTTP {response.status_code}")
        lists = response.json().get("data", [])
        if self.config.list_id and not lists:
            return CheckResult(False, f"Klaviyo has no list with id {self.config.list_id}")
        if self.config.list_id:
            return CheckResult(True, f"connected; list {lists[0]['attributes']['name']!r}")
        return CheckResult(True, "connected")

    def close(self) -> None:
        self._http.close()

    def _import(
        self, chunk: list[tuple[str, dict[str, Any]]]
    ) -> tuple[list[RowResult], list[dict[str, Any]]]:
        """Start one import job; a 400 rejects the profiles its pointers name, then retries."""
        body: dict[str, Any] = {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": [p for _, p in chunk]}},
            }
        }
        if self.mode is Mode.MEMBERSHIP:
            list_ref = {"type": "list", "id": self.config.list_id}
            body["data"]["relationships"] = {"lists": {"data": [list_ref]}}
        response = self._http.request(
            "POST",
            "/api/profile-bulk-import-jobs",
            records=len(chunk),
            content=json.dumps(body).encode(),
            headers={"Content-Type": JSON_API},
        )
        if response.status_code == 202:
            job_id = response.json()["data"]["id"]
            return [], [{"id": job_id, "keys": [key for key, _ in chunk]}]

        errors = _errors(response)
        if response.status_code != 400:
            raise DestinationError(
                f"Klaviyo refused a bulk import with HTTP {response.status_code}: "
                + _describe(errors),
                where="klaviyo",
                hint="check the list id and the API key's scopes",
            )
        return self._retry_without(chunk, errors)

    def _retry_without(
        self, chunk: list[tuple[str, dict[str, Any]]], errors: list[dict[str, Any]]
    ) -> tuple[list[RowResult], list[dict[str, Any]]]:
        """Reject the profiles a 400 points at and send the rest again, or halve the chunk."""
        named: dict[int, str] = {}
        for error in errors:
            index = _pointer_index(error)
            if index is not None and index < len(chunk):
                named.setdefault(index, _describe([error]))
        if named:
            rejected = [RowResult.rejected(chunk[i][0], reason) for i, reason in named.items()]
            rest = [item for i, item in enumerate(chunk) if i not in named]
            if not rest:
                return rejected, []
            more, parts = self._import(rest)
            return rejected + more, parts
        if len(chunk) == 1:
            return [RowResult.rejected(chunk[0][0], _describe(errors))], []

        middle = len(chunk) // 2
        first_rejected, first_parts = self._import(chunk[:middle])
        second_rejected, second_parts = self._import(chunk[middle:])
        return first_rejected + second_rejected, first_parts + second_parts

    def _finished(self, part: Mapping[str, Any]) -> list[RowResult] | None:
        """The rows of one import job, or None while Klaviyo is still working on it."""
        job_id, keys = part["id"], list(part["keys"])
        response = self._http.request("GET", f"/api/profile-bulk-import-jobs/{job_id}")
        if response.status_code != 200:
            raise DestinationError(
                f"Klaviyo answered HTTP {response.status_code} for import job {job_id}: "
                + _describe(_errors(response)),
                where="klaviyo",
            )
        attributes = response.json()["data"]["attributes"]
        status = attributes["status"]
        if status in _RUNNING:
            return None
        if status != "complete":
            reason = f"Klaviyo {status} import job {job_id}"
            return [RowResult.rejected(key, reason) for key in keys]

        failures: dict[int, str] = {}
        if attributes.get("failed_count"):
            failures = self._import_errors(job_id)
        logger.info(
            "klaviyo import job %s complete: %d profiles, %d failed",
            job_id,
            len(keys),
            len(failures),
        )
        return [
            RowResult.rejected(key, failures[i]) if i in failures else RowResult.accepted(key)
            for i, key in enumerate(keys)
        ]

    def _import_errors(self, job_id: str) -> dict[int, str]:
        """Reasons by the failed profile's position in the import request."""
        failures: dict[int, str] = {}
        for error in self._pages(f"/api/profile-bulk-import-jobs/{job_id}/import-errors"):
            attributes = error.get("attributes", {})
            index = _pointer_index(attributes)
            if index is not None:
                failures.setdefault(index, _describe([attributes]))
        return failures

    def _pages(self, path: str, params: Mapping[str, str] | None = None) -> Iterator[Any]:
        """Every resource of a paginated collection, following `links.next`."""
        query: Mapping[str, str] | None = params
        while True:
            response = self._http.request("GET", path, params=query)
            if response.status_code != 200:
                raise DestinationError(
                    f"Klaviyo answered HTTP {response.status_code} for {path}: "
                    + _describe(_errors(response)),
                    where="klaviyo",
                )
            document = response.json()
            yield from document.get("data", [])
            link = (document.get("links") or {}).get("next")
            if not link:
                return
            url = httpx.URL(link)
            path, query = url.path, dict(url.params)

    def _remove(self, records: Sequence[Record]) -> list[RowResult]:
        results: list[RowResult] = []
        by_kind: dict[str, list[tuple[str, str]]] = {}
        for record in records:
            kind = next((k for k in IDENTIFIERS if _text(record.fields.get(k))), None)
            if kind is None:
                results.append(RowResult.rejected(record.key, _NO_IDENTIFIER))
            else:
                by_kind.setdefault(kind, []).append((record.key, _text(record.fields[kind])))

        found: list[tuple[str, str]] = []  # (key, profile id)
        for kind, wanted in by_kind.items():
            ids = self._profile_ids(kind, [value for _, value in wanted])
            for key, value in wanted:
                if value in ids:
                    found.append((key, ids[value]))
                else:  # Klaviyo has no such profile, so it is on no list
                    results.append(RowResult.accepted(key))

        for start in range(0, len(found), MAX_LIST_MEMBERS_PER_CALL):
            chunk = found[start : start + MAX_LIST_MEMBERS_PER_CALL]
            self._unlist([profile_id for _, profile_id in chunk])
            results.extend(RowResult.accepted(key) for key, _ in chunk)
        return results

    def _profile_ids(self, kind: str, values: list[str]) -> dict[str, str]:
        """Klaviyo's profile id for each identifier value that it knows."""
        ids: dict[str, str] = {}
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), PROFILE_PAGE_SIZE):
            chunk = unique[start : start + PROFILE_PAGE_SIZE]
            params = {
                "filter": f"any({kind},{json.dumps(chunk, separators=(',', ':'))})",
                "fields[profile]": kind,
                "page[size]": str(PROFILE_PAGE_SIZE),
            }
            for profile in self._pages("/api/profiles", params):
                value = _text((profile.get("attributes") or {}).get(kind))
                if value:
                    ids[value.lower() if kind == "email" else value] = profile["id"]
        return ids

    def _unlist(self, profile_ids: list[str]) -> None:
        body = {"data": [{"type": "profile", "id": profile_id} for profile_id in profile_ids]}
        response = self._http.request(
            "DELETE",
            f"/api/lists/{self.config.list_id}/relationships/profiles",
            records=len(profile_ids),
            content=json.dumps(body).encode(),
            headers={"Content-Type": JSON_API},
        )
        if response.status_code != 204:
            raise DestinationError(
                f"Klaviyo refused to remove profiles from list {self.config.list_id} "
                f"(HTTP {response.status_code}): " + _describe(_errors(response)),
                where="klaviyo",
                hint="check that the list exists and the key has the lists:write scope",
            )


_NO_IDENTIFIER = "the row has no email, phone_number or external_id"


def klaviyo_wait(response: httpx.Response) -> float | None:
    """Seconds left in Klaviyo's steady window when an answer says none remain in it.

    >>> spent = {"RateLimit-Limit": "150", "RateLimit-Remaining": "0", "RateLimit-Reset": "42"}
    >>> klaviyo_wait(httpx.Response(200, headers=spent))
    42.0
    """
    if response.headers.get("RateLimit-Remaining", "").strip() != "0":
        return None
    reset = response.headers.get("RateLimit-Reset", "").strip()
    return float(reset) if reset.isdigit() else None


def _profile(record: Record) -> tuple[dict[str, Any], str | None]:
    """The import request's profile object for a record, or why it cannot be sent."""
    attributes: dict[str, Any] = {}
    location: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for name, value in record.fields.items():
        if value is None:
            continue
        target = attributes if name in _ATTRIBUTES else location if name in _LOCATION else None
        if target is None:
            properties[name] = _plain(value)
        else:
            target[name] = _plain(value) if name in ("latitude", "longitude") else str(value)
    if not any(attributes.get(name) for name in IDENTIFIERS):
        return {}, _NO_IDENTIFIER
    if location:
        attributes["location"] = location
    if properties:
        attributes["properties"] = properties

    profile = {"type": "profile", "attributes": attributes}
    size = len(json.dumps(profile).encode())
    if size > MAX_PROFILE_BYTES:
        return {}, f"the profile is {size:,} bytes; Klaviyo accepts at most 100 KB per profile"
    return profile, None


def _chunks(
    profiles: list[tuple[str, dict[str, Any]]],
) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Profiles in import requests of at most 10,000 profiles and 5 MB."""
    chunk: list[tuple[str, dict[str, Any]]] = []
    size = _ENVELOPE_BYTES
    for key, profile in profiles:
        profile_size = len(json.dumps(profile).encode()) + 2
        if chunk and (len(chunk) == MAX_PROFILES_PER_JOB or size + profile_size > MAX_JOB_BYTES):
            yield chunk
            chunk, size = [], _ENVELOPE_BYTES
        chunk.append((key, profile))
        size += profile_size
    if chunk:
        yield chunk


def _pointer_index(error: Mapping[str, Any]) -> int | None:
    pointer = (error.get("source") or {}).get("pointer") or ""
    match = _PROFILE_POINTER.match(pointer)
    return int(match.group(1)) if match else None


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        errors = response.json().get("errors", [])
    except (ValueError, AttributeError):
        return []
    return [e for e in errors if isinstance(e, dict)]


def _describe(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "no reason given"
    return "; ".join(
        ": ".join(str(e[k]) for k in ("title", "detail") if e.get(k)) or str(e.get("code"))
        for e in errors
    )


def _result(item: Sequence[Any]) -> RowResult:
    key, outcome, reason = item
    return RowResult.accepted(key) if outcome == "accepted" else RowResult.rejected(key, reason)


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def _plain(value: Any) -> Any:
    """A JSON value for a warehouse value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
