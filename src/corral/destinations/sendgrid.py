"""Twilio SendGrid Marketing Campaigns: contacts, and list membership.

Adds and changes go to "Add or Update a Contact" (`PUT /v3/marketing/contacts`), which
queues an import job: `send` answers with a `Job`, and `poll` reads the job's status. A job
that `errored` names its failed contacts only in a CSV file at `errors_url`; `poll` reads
that file and rejects the rows whose identifier it names. A request that SendGrid refuses
outright (HTTP 400) names the bad contacts by position (`contacts[3].email`): those rows are
rejected and the rest sent again.

In membership mode the upsert carries the list's id, so adding a row to the list and
writing its fields are one call. Removals need SendGrid's contact ids: `send` looks them up
("Get Contacts by Identifiers", 100 per call) and removes them from the list ("Remove
Contacts from a List", 100 ids per call). A contact SendGrid does not know is on no list,
so its row is accepted. Removing is asynchronous at SendGrid too, but its job reports
nothing per contact, so the row is accepted once SendGrid has queued it.

Limits, from SendGrid's OpenAPI description (`../shared/specs`): 30,000 contacts or 6 MB
per upsert, whichever is lower; 100 identifiers per search. SendGrid publishes no fixed
request rate for these endpoints: its "Rate Limits" page says every answer carries
`X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (a Unix time) and that
a spent limit answers 429 until the reset. Corral paces itself at 10 requests per second,
waits out a 429 until that reset, and holds back when an answer leaves none remaining.

The errors file is documented only as "information about any errors" (Import Contacts
Status) and, for CSV uploads, as holding "the email addresses and error reasons"; its
columns are read by name, and a gzip-compressed file is unpacked.

Fields named like SendGrid's reserved fields (`email`, `first_name`, `city`, ...) fill them;
every other field is a custom field, so its destination name must be the custom field's id
(for example `e1_T`). A missing value (None) is left out, so SendGrid keeps what it has.

>>> SendGridDestination.catalog.batch_size
30000
"""

from __future__ import annotations

import csv
import gzip
import io
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
from corral.destinations.http import HttpClient, seconds_until_epoch
from corral.errors import CorralError, DefinitionError, DestinationError

logger = logging.getLogger(__name__)

MAX_CONTACTS_PER_UPSERT = 30_000
MAX_UPSERT_BYTES = 6_000_000
MAX_IDENTIFIERS_PER_SEARCH = 100
MAX_IDS_PER_LIST_REMOVAL = 100
_ENVELOPE_BYTES = 200  # {"list_ids": [...], "contacts": [...]} around the contacts

# Identifier fields in the order `send` uses them to find a contact.
IDENTIFIERS = ("email", "phone_number_id", "external_id")
_RESERVED = frozenset(
    {
        *IDENTIFIERS,
        "anonymous_id",
        "address_line_1",
        "address_line_2",
        "alternate_emails",
        "city",
        "country",
        "first_name",
        "last_name",
        "postal_code",
        "state_province_region",
    }
)
_CONTACT_POSITION = re.compile(r"contacts\[(\d+)\]")
_NO_IDENTIFIER = "the row has no email, phone_number_id or external_id"


class SendGridConfig(BaseModel):
    """Settings of a SendGrid destination."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(
        description="An API key with Marketing Campaigns contacts and lists access"
    )
    list_id: str | None = Field(
        default=None, description="The list (a UUID) that membership mode keeps"
    )
    base_url: str = Field(default="https://api.sendgrid.com", description="SendGrid's API host")


class SendGridDestination:
    """Upserts SendGrid Marketing Campaigns contacts and keeps a list's members."""

    catalog: ClassVar[Catalog] = Catalog(
        name="sendgrid",
        title="Twilio SendGrid",
        modes=frozenset({Mode.UPSERT, Mode.MEMBERSHIP}),
        config=SendGridConfig,
        batch_size=MAX_CONTACTS_PER_UPSERT,
        rate_limit=RateLimit(requests=10, per_seconds=1.0),
        concurrency=1,
        identifiers={
            "email": Identifier("email", "plain", hashed=False),
            "phone_number_id": Identifier("phone", "plain", hashed=False),
            "external_id": Identifier("external_id", "plain", hashed=False),
        },
        asynchronous=True,
        docs="docs/destinations/sendgrid.md",
    )

    def __init__(
        self,
        config: SendGridConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.mode = Mode.UPSERT
        self._http = HttpClient(
            destination="sendgrid",
            base_url=config.base_url,
            rate_limit=self.catalog.rate_limit,
            headers={"Authorization": f"Bearer {config.api_key.get_secret_value()}"},
            transport=transport,
            sleep=sleep,
            clock=clock,
            throttle=sendgrid_wait,
        )
        # The errors file lives on another host: fetch it without SendGrid's credentials.
        self._files = httpx.Client(transport=transport, timeout=30.0, follow_redirects=True)

    def open(self, mode: Mode, fields: Sequence[str]) -> None:
        if mode not in self.catalog.modes:
            raise DefinitionError(
                f"the sendgrid destination does not support mode {mode.value!r}",
                hint="use upsert or membership",
            )
        if mode is Mode.MEMBERSHIP and not self.config.list_id:
            raise DefinitionError(
                "membership mode needs the SendGrid list to keep",
                hint="set list_id in the destination's config",
            )
        if not set(IDENTIFIERS) & set(fields):
            raise DefinitionError(
                "a sendgrid sync must map at least one of: " + ", ".join(IDENTIFIERS),
                hint="map an email, phone_number_id or external_id field",
            )
        self.mode = mode

    def send(self, batch: Batch) -> list[RowResult] | Job:
        if batch.operation is Operation.REMOVE:
            if self.mode is not Mode.MEMBERSHIP:
                return [RowResult.accepted(r.key) for r in batch.records]  # upsert never removes
            return self._remove(batch.records)

        results: list[RowResult] = []
        contacts: list[tuple[str, dict[str, Any]]] = []
        for record in batch.records:
            contact = _contact(record)
            if contact is None:
                results.append(RowResult.rejected(record.key, _NO_IDENTIFIER))
            else:
                contacts.append((record.key, contact))

        parts: list[dict[str, Any]] = []
        for chunk in _chunks(contacts):
            rejected, sent = self._upsert(chunk)
            results.extend(rejected)
            parts.extend(sent)
        if not parts:
            return results
        return Job(
            id=parts[0]["id"],
            keys=[r.key for r in batch.records],
            poll_after=5.0,
            data={"parts": parts, "done": [[r.key, r.outcome.value, r.reason] for r in results]},
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
        return [
            RowResult.accepted(key) if outcome == "accepted" else RowResult.rejected(key, reason)
            for key, outcome, reason in done
        ]

    def check(self) -> CheckResult:
        path = (
            f"/v3/marketing/lists/{self.config.list_id}"
            if self.config.list_id
            else "/v3/marketing/contacts/count"
        )
        try:
            response = self._http.request("GET", path)
        except CorralError as error:
            return CheckResult(False, error.message)
        if response.status_code == 404 and self.config.list_id:
            return CheckResult(False, f"SendGrid has no list with id {self.config.list_id}")
        if response.status_code != 200:
            return CheckResult(False, f"SendGrid answered HTTP {response.status_code}")
        if self.config.list_id:
            return CheckResult(True, f"connected; list {response.json().get('name')!r}")
        return CheckResult(True, "connected")

    def close(self) -> None:
        self._http.close()
        self._files.close()

    def _upsert(
        self, chunk: list[tuple[str, dict[str, Any]]]
    ) -> tuple[list[RowResult], list[dict[str, Any]]]:
        """Queue one upsert; a 400 rejects the contacts it names and the rest go again."""
        body: dict[str, Any] = {"contacts": [contact for _, contact in chunk]}
        if self.mode is Mode.MEMBERSHIP:
            body["list_ids"] = [self.config.list_id]
        response = self._http.request(
            "PUT", "/v3/marketing/contacts", records=len(chunk), json=body
        )
        if response.status_code == 202:
            part = {
                "id": response.json()["job_id"],
                "keys": [key for key, _ in chunk],
                "identities": [_identity(contact) for _, contact in chunk],
            }
            return [], [part]

        errors = _errors(response)
        named: dict[int, str] = {}
        for error in errors:
            match = _CONTACT_POSITION.search(str(error.get("field") or ""))
            if match and int(match.group(1)) < len(chunk):
                named.setdefault(int(match.group(1)), str(error.get("message") or "invalid"))
        if response.status_code != 400 or not named:
            raise DestinationError(
                f"SendGrid refused the contacts upsert with HTTP {response.status_code}: "
                + _describe(errors),
                where="sendgrid",
                hint="check the list id and that custom fields exist under the mapped ids",
            )

        rejected = [RowResult.rejected(chunk[i][0], reason) for i, reason in named.items()]
        rest = [item for i, item in enumerate(chunk) if i not in named]
        if not rest:
            return rejected, []
        more, parts = self._upsert(rest)
        return rejected + more, parts

    def _finished(self, part: Mapping[str, Any]) -> list[RowResult] | None:
        """The rows of one upsert job, or None while SendGrid has not finished it."""
        job_id, keys = part["id"], list(part["keys"])
        response = self._http.request("GET", f"/v3/marketing/contacts/imports/{job_id}")
        if response.status_code != 200:
            raise DestinationError(
                f"SendGrid answered HTTP {response.status_code} for import job {job_id}: "
                + _describe(_errors(response)),
                where="sendgrid",
            )
        job = response.json()
        status = job.get("status")
        if status == "completed":
            return [RowResult.accepted(key) for key in keys]
        if status not in ("errored", "failed"):
            return None  # pending, or a state SendGrid may add later

        results = job.get("results") or {}
        reasons = self._error_file(results.get("errors_url"))
        identities = list(part["identities"])
        named = {
            i: reasons[identity] for i, identity in enumerate(identities) if identity in reasons
        }
        logger.info(
            "sendgrid import job %s %s: %d contacts, %s errored, %d matched to rows",
            job_id,
            status,
            len(keys),
            results.get("errored_count"),
            len(named),
        )
        if status == "failed" or not named:
            # Without a row named in the file, no row can be told apart: reject them all,
            # so they are sent again next run (an upsert is safe to repeat).
            fallback = (
                f"SendGrid {status} import job {job_id} ({results.get('errored_count')} errors)"
            )
            return [RowResult.rejected(key, named.get(i, fallback)) for i, key in enumerate(keys)]
        return [
            RowResult.rejected(key, named[i]) if i in named else RowResult.accepted(key)
            for i, key in enumerate(keys)
        ]

    def _error_file(self, url: str | None) -> dict[str, str]:
        """Reasons by contact identifier, read from the job's CSV error file."""
        if not url:
            return {}
        try:
            response = self._files.get(url)
        except httpx.HTTPError as error:
            logger.warning("sendgrid: could not read the error file: %s", error)
            return {}
        if response.status_code != 200:
            logger.warning("sendgrid: the error file answered HTTP %d", response.status_code)
            return {}
        return _error_reasons(_file_text(response.content))

    def _remove(self, records: Sequence[Record]) -> list[RowResult]:
        results: list[RowResult] = []
        by_kind: dict[str, list[tuple[str, str]]] = {}
        for record in records:
            kind = next((k for k in IDENTIFIERS if _text(record.fields.get(k))), None)
            if kind is None:
                results.append(RowResult.rejected(record.key, _NO_IDENTIFIER))
            else:
                by_kind.setdefault(kind, []).append((record.key, _text(record.fields[kind])))

        found: list[tuple[str, str]] = []  # (key, contact id)
        for kind, wanted in by_kind.items():
            ids = self._contact_ids(kind, [value for _, value in wanted])
            for key, value in wanted:
                if _folded(kind, value) in ids:
                    found.append((key, ids[_folded(kind, value)]))
                else:  # SendGrid has no such contact, so it is on no list
                    results.append(RowResult.accepted(key))

        for start in range(0, len(found), MAX_IDS_PER_LIST_REMOVAL):
            chunk = found[start : start + MAX_IDS_PER_LIST_REMOVAL]
            self._unlist(list(dict.fromkeys(contact_id for _, contact_id in chunk)))
            results.extend(RowResult.accepted(key) for key, _ in chunk)
        return results

    def _contact_ids(self, kind: str, values: list[str]) -> dict[str, str]:
        """SendGrid's contact id for each identifier value that it knows."""
        ids: dict[str, str] = {}
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), MAX_IDENTIFIERS_PER_SEARCH):
            chunk = unique[start : start + MAX_IDENTIFIERS_PER_SEARCH]
            response = self._http.request(
                "POST",
                f"/v3/marketing/contacts/search/identifiers/{kind}",
                records=len(chunk),
                json={"identifiers": chunk},
            )
            if response.status_code == 404:
                continue  # none of them exists
            if response.status_code != 200:
                raise DestinationError(
                    f"SendGrid answered HTTP {response.status_code} to a contact search: "
                    + _describe(_errors(response)),
                    where="sendgrid",
                )
            for value, match in (response.json().get("result") or {}).items():
                contact = match.get("contact") if isinstance(match, dict) else None
                if contact and contact.get("id"):
                    ids[_folded(kind, value)] = contact["id"]
        return ids

    def _unlist(self, contact_ids: list[str]) -> None:
        response = self._http.request(
            "DELETE",
            f"/v3/marketing/lists/{self.config.list_id}/contacts",
            records=len(contact_ids),
            params={"contact_ids": ",".join(contact_ids)},
        )
        if response.status_code not in (200, 202, 204):
            raise DestinationError(
                f"SendGrid refused to remove contacts from list {self.config.list_id} "
                f"(HTTP {response.status_code}): " + _describe(_errors(response)),
                where="sendgrid",
                hint="check that the list exists",
            )


def _contact(record: Record) -> dict[str, Any] | None:
    """The upsert's contact object for a record, or None when it has no identifier."""
    contact: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for name, value in record.fields.items():
        if value is None:
            continue
        if name == "alternate_emails":
            values = value if isinstance(value, list | tuple) else [value]
            contact[name] = [str(v) for v in values]
        elif name in _RESERVED:
            contact[name] = str(_plain(value))
        else:
            custom[name] = _plain(value)
    if not any(_text(contact.get(name)) for name in IDENTIFIERS):
        return None
    if custom:
        contact["custom_fields"] = custom
    return contact


def _identity(contact: Mapping[str, Any]) -> str:
    """The value the error file names a contact by: its email, else another identifier."""
    for kind in IDENTIFIERS:
        if _text(contact.get(kind)):
            return _folded(kind, _text(contact[kind]))
    return ""


def sendgrid_wait(response: httpx.Response) -> float | None:
    """Seconds until SendGrid's limit resets, when a 429 or a spent limit says so."""
    spent = response.headers.get("X-RateLimit-Remaining", "").strip() == "0"
    if response.status_code != 429 and not spent:
        return None
    return seconds_until_epoch(response.headers.get("X-RateLimit-Reset"))


def _file_text(content: bytes) -> str:
    """The errors file as text, unpacked when it comes gzip-compressed."""
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError) as error:
            logger.warning("sendgrid: the error file is not valid gzip: %s", error)
            return ""
    return content.decode("utf-8", errors="replace")


def _error_reasons(text: str) -> dict[str, str]:
    """Reasons by identifier from an errors CSV.

    SendGrid documents the file only as "information about any errors", so this reads any
    header row: identifier columns are the ones named like an identifier field, reason
    columns the ones whose name mentions error, reason or message.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = reader.fieldnames or []
    id_columns = [c for c in columns if c.strip().lower() in (*IDENTIFIERS, "anonymous_id")]
    reason_columns = [
        c for c in columns if any(w in c.lower() for w in ("error", "reason", "message"))
    ]
    reasons: dict[str, str] = {}
    for row in reader:
        reason = "; ".join(row[c] for c in reason_columns if row.get(c)) or "SendGrid error"
        for column in id_columns:
            value = _text(row.get(column))
            if value:
                reasons.setdefault(_folded(column.strip().lower(), value), reason)
    return reasons


def _chunks(
    contacts: list[tuple[str, dict[str, Any]]],
) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Contacts in upserts of at most 30,000 contacts and 6 MB."""
    chunk: list[tuple[str, dict[str, Any]]] = []
    size = _ENVELOPE_BYTES
    for key, contact in contacts:
        contact_size = len(json.dumps(contact).encode()) + 2
        full = len(chunk) == MAX_CONTACTS_PER_UPSERT or size + contact_size > MAX_UPSERT_BYTES
        if chunk and full:
            yield chunk
            chunk, size = [], _ENVELOPE_BYTES
        chunk.append((key, contact))
        size += contact_size
    if chunk:
        yield chunk


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        errors = response.json().get("errors", [])
    except (ValueError, AttributeError):
        return []
    if isinstance(errors, dict):
        errors = [errors]
    return [e for e in errors if isinstance(e, dict)]


def _describe(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "no reason given"
    return "; ".join(
        f"{e['field']}: {e.get('message')}" if e.get("field") else str(e.get("message"))
        for e in errors
    )


def _folded(kind: str, value: str) -> str:
    return value.lower() if kind == "email" else value


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def _plain(value: Any) -> Any:
    """A JSON value for a warehouse value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
