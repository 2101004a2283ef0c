"""HubSpot CRM: contacts by email, and membership of a manual list.

upsert      "Create or update a batch of contacts" (`batch/upsert`, `idProperty` email)
update      "Update a batch of contacts" (`batch/update`, `idProperty` email): HubSpot
            answers NOT_FOUND for an email it lacks, and that row is rejected
membership  upserts the contacts as above, then adds their record ids to the list (lists
            v3, `memberships/add`); removals read the contacts' ids by email
            (`batch/read`) and take them off the list (`memberships/remove`)

Every call carries at most 100 contacts, HubSpot's batch limit. Each input carries an
`objectWriteTraceId` (its position in the call), so a 207 Multi-Status answer's errors name
the rows they reject; errors that name an email instead are matched by email. A 400 that
rejects the whole call names no row: the call is halved until the bad row stands alone.

Values are written as text: booleans as `true`/`false`, dates as ISO 8601, and a missing
value (None) as an empty string, which clears the property in HubSpot.

Rate limits are HubSpot's own signals on top of a fixed pace (`hubspot_wait`): a 429 names
the limit it hit in `policyName`. The rolling ten-second limit is waited out for the window
HubSpot reports in `X-HubSpot-RateLimit-Interval-Milliseconds`; the daily limit, which
resets at midnight in the account's time zone, hands the rows back to the engine for an
hour. A success that reports `X-HubSpot-RateLimit-Remaining: 0` holds the next call back
for the window too. (HubSpot's "API usage guidelines" page.)

>>> HubSpotDestination.catalog.rate_limit
RateLimit(requests=100, per_seconds=10.0)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
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

MAX_INPUTS = 100
# HubSpot's rolling window when a 429 does not say (its usage guidelines: limits per 10 s).
WINDOW_SECONDS = 10.0
# The daily limit resets at midnight in the account's time zone, which the API does not
# report: the rows go back to the engine and are tried again an hour later.
DAILY_LIMIT_WAIT = 3_600.0
CONTACTS = "/crm/v3/objects/contacts"
_NO_EMAIL = "the row has no email, which HubSpot matches contacts on"


class HubSpotConfig(BaseModel):
    """Settings of a HubSpot destination."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr = Field(
        description="A private app's access token with crm.objects.contacts.read/write "
        "and, for membership mode, crm.lists.read/write"
    )
    list_id: str | None = Field(
        default=None,
        description="The ILS id of the MANUAL or SNAPSHOT list that membership mode keeps",
    )
    base_url: str = Field(default="https://api.hubapi.com", description="HubSpot's API host")


class HubSpotDestination:
    """Writes HubSpot contacts by email and keeps a manual list's members."""

    catalog: ClassVar[Catalog] = Catalog(
        name="hubspot",
        title="HubSpot",
        modes=frozenset({Mode.UPSERT, Mode.UPDATE, Mode.MEMBERSHIP}),
        config=HubSpotConfig,
        batch_size=MAX_INPUTS,
        # The lowest burst limit HubSpot documents for a private app (Free and Starter);
        # Professional and Enterprise accounts get 190 per 10 s.
        rate_limit=RateLimit(requests=100, per_seconds=10.0),
        concurrency=2,
        identifiers={"email": Identifier("email", "plain", hashed=False)},
        required_fields=frozenset({"email"}),
        docs="docs/destinations/hubspot.md",
    )

    def __init__(
        self,
        config: HubSpotConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.mode = Mode.UPSERT
        self._http = HttpClient(
            destination="hubspot",
            base_url=config.base_url,
            rate_limit=self.catalog.rate_limit,
            headers={"Authorization": f"Bearer {config.access_token.get_secret_value()}"},
            transport=transport,
            sleep=sleep,
            clock=clock,
            throttle=hubspot_wait,
        )

    def open(self, mode: Mode, fields: Sequence[str]) -> None:
        if mode not in self.catalog.modes:
            raise DefinitionError(
                f"the hubspot destination does not support mode {mode.value!r}",
                hint="use upsert, update or membership",
            )
        if mode is Mode.MEMBERSHIP and not self.config.list_id:
            raise DefinitionError(
                "membership mode needs the HubSpot list to keep",
                hint="set list_id in the destination's config to a MANUAL list's id",
            )
        if "email" not in fields:
            raise DefinitionError(
                "a hubspot sync must map the email field", hint="map a column to email"
            )
        self.mode = mode

    def send(self, batch: Batch) -> list[RowResult]:
        results: list[RowResult] = []
        rows: list[tuple[Record, str]] = []
        seen: set[str] = set()
        for record in batch.records:
            email = _text(record.fields.get("email")).lower()
            if not email:
                results.append(RowResult.rejected(record.key, _NO_EMAIL))
            elif email in seen:
                # HubSpot refuses a whole batch that names one contact twice.
                reason = f"another row in the same batch has the email {email}"
                results.append(RowResult.rejected(record.key, reason))
            else:
                seen.add(email)
                rows.append((record, email))
        if not rows:
            return results

        if batch.operation is Operation.REMOVE:
            if self.mode is Mode.MEMBERSHIP:
                results.extend(self._unlist(rows))
            else:  # upsert and update never remove
                results.extend(RowResult.accepted(record.key) for record, _ in rows)
            return results

        action = "update" if self.mode is Mode.UPDATE else "upsert"
        written, ids = self._write(action, rows)
        if self.mode is Mode.MEMBERSHIP:
            written = self._enlist(rows, written, ids)
        results.extend(written)
        return results

    def poll(self, job: Job) -> list[RowResult]:
        raise DestinationError(
            "the hubspot destination is synchronous and has no jobs to poll", where="hubspot"
        )

    def check(self) -> CheckResult:
        try:
            response = self._http.request("GET", CONTACTS, params={"limit": 1})
            if response.status_code != 200:
                return CheckResult(False, f"HubSpot answered HTTP {response.status_code}")
            if not self.config.list_id:
                return CheckResult(True, "connected")
            response = self._http.request("GET", f"/crm/v3/lists/{self.config.list_id}")
        except CorralError as error:
            return CheckResult(False, error.message)
        if response.status_code != 200:
            return CheckResult(False, f"HubSpot has no list with id {self.config.list_id}")
        name = (response.json().get("list") or {}).get("name")
        return CheckResult(True, f"connected; list {name!r}")

    def close(self) -> None:
        self._http.close()

    def _write(
        self, action: str, rows: list[tuple[Record, str]]
    ) -> tuple[list[RowResult], dict[str, str]]:
        """Upsert or update contacts: one result per row, and record ids by email."""
        inputs = [
            {
                "idProperty": "email",
                "id": email,
                "objectWriteTraceId": str(position),
                "properties": _properties(record),
            }
            for position, (record, email) in enumerate(rows)
        ]
        response = self._http.request(
            "POST", f"{CONTACTS}/batch/{action}", records=len(rows), json={"inputs": inputs}
        )
        document = _json(response)
        if response.status_code in (200, 201, 207):
            return self._outcomes(rows, document)
        if response.status_code not in (400, 409, 422):
            raise DestinationError(
                f"HubSpot refused a batch {action} with HTTP {response.status_code}: "
                + _message(document),
                where="hubspot",
            )

        # The whole call was refused. Reject the rows it names; halve it when it names none.
        named = _named_rows(rows, [document])
        if named:
            rest = [row for i, row in enumerate(rows) if i not in named]
            rejected = [RowResult.rejected(rows[i][0].key, reason) for i, reason in named.items()]
            more, ids = self._write(action, rest) if rest else ([], {})
            return rejected + more, ids
        if len(rows) == 1:
            return [RowResult.rejected(rows[0][0].key, _message(document))], {}
        middle = len(rows) // 2
        first, first_ids = self._write(action, rows[:middle])
        second, second_ids = self._write(action, rows[middle:])
        return first + second, {**first_ids, **second_ids}

    def _outcomes(
        self, rows: list[tuple[Record, str]], document: Mapping[str, Any]
    ) -> tuple[list[RowResult], dict[str, str]]:
        """Per-row results of a 200 or 207 answer."""
        named = _named_rows(rows, document.get("errors") or [])
        ids: dict[str, str] = {}
        for result in document.get("results") or []:
            email = _result_email(rows, result)
            if email and result.get("id") is not None:
                ids[email] = str(result["id"])

        outcomes: list[RowResult] = []
        for position, (record, _) in enumerate(rows):
            if position in named:
                outcomes.append(RowResult.rejected(record.key, named[position]))
            else:
                outcomes.append(RowResult.accepted(record.key))
        if named:
            logger.info("hubspot: %d of %d contacts rejected", len(named), len(rows))
        return outcomes, ids

    def _enlist(
        self, rows: list[tuple[Record, str]], written: list[RowResult], ids: dict[str, str]
    ) -> list[RowResult]:
        """Add the written contacts to the list; rows HubSpot cannot add are rejected."""
        accepted = {r.key for r in written if r.outcome.value == "accepted"}
        emails = [email for record, email in rows if record.key in accepted]
        missing = [email for email in emails if email not in ids]
        if missing:  # an answer without the contact's id: read it by email
            ids.update(self._read_ids(missing))

        record_ids = [ids[email] for email in emails if email in ids]
        absent: set[str] = set()
        if record_ids:
            absent = self._membership("add", record_ids)
        results: list[RowResult] = []
        for result, (_, email) in zip(written, rows, strict=True):
            if result.key not in accepted:
                results.append(result)
            elif email not in ids or ids[email] in absent:
                results.append(RowResult.rejected(result.key, "HubSpot found no such contact"))
            else:
                results.append(result)
        return results

    def _unlist(self, rows: list[tuple[Record, str]]) -> list[RowResult]:
        ids = self._read_ids([email for _, email in rows])
        if ids:
            self._membership("remove", list(ids.values()))
        # A contact HubSpot does not know is on no list, so its removal is done too.
        return [RowResult.accepted(record.key) for record, _ in rows]

    def _read_ids(self, emails: list[str]) -> dict[str, str]:
        """HubSpot's record id for each email it knows."""
        body = {
            "idProperty": "email",
            "properties": ["email"],
            "inputs": [{"id": email} for email in emails],
        }
        response = self._http.request(
            "POST", f"{CONTACTS}/batch/read", records=len(emails), json=body
        )
        document = _json(response)
        if response.status_code not in (200, 207):
            raise DestinationError(
                f"HubSpot refused to read contacts by email (HTTP {response.status_code}): "
                + _message(document),
                where="hubspot",
            )
        ids: dict[str, str] = {}
        for result in document.get("results") or []:
            email = _text((result.get("properties") or {}).get("email")).lower()
            if email and result.get("id") is not None:
                ids[email] = str(result["id"])
        return ids

    def _membership(self, change: str, record_ids: list[str]) -> set[str]:
        """Add or remove list members; answers the ids HubSpot reports missing."""
        response = self._http.request(
            "PUT",
            f"/crm/v3/lists/{self.config.list_id}/memberships/{change}",
            records=len(record_ids),
            json=record_ids,
        )
        document = _json(response)
        if response.status_code != 200:
            raise DestinationError(
                f"HubSpot refused to {change} members of list {self.config.list_id} "
                f"(HTTP {response.status_code}): " + _message(document),
                where="hubspot",
                hint="check that the list exists and is a MANUAL or SNAPSHOT list of contacts",
            )
        return {str(i) for i in document.get("recordIdsMissing") or []}


def hubspot_wait(response: httpx.Response) -> float | None:
    """How long HubSpot asks every call to wait, from a 429's policy or a spent window.

    >>> hubspot_wait(httpx.Response(429, json={"policyName": "DAILY"}))
    3600.0
    >>> headers = {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
    >>> rolling = {"policyName": "TEN_SECONDLY_ROLLING"}
    >>> hubspot_wait(httpx.Response(429, headers=headers, json=rolling))
    10.0
    """
    window = _milliseconds(response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
    if response.status_code == 429:
        policy = _text(_json(response).get("policyName")).upper()
        if policy == "DAILY":
            return DAILY_LIMIT_WAIT
        if policy == "SECONDLY":
            return 1.0
        return window or WINDOW_SECONDS  # TEN_SECONDLY_ROLLING, or a policy HubSpot adds
    if _text(response.headers.get("X-HubSpot-RateLimit-Daily-Remaining")) == "0":
        return DAILY_LIMIT_WAIT
    if _text(response.headers.get("X-HubSpot-RateLimit-Remaining")) == "0":
        return window or WINDOW_SECONDS
    return None


def _milliseconds(value: str | None) -> float | None:
    text = _text(value)
    return int(text) / 1000 if text.isdigit() and int(text) > 0 else None


def _properties(record: Record) -> dict[str, str]:
    return {name: _value(value) for name, value in record.fields.items() if name != "email"}


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _named_rows(
    rows: list[tuple[Record, str]], errors: Sequence[Mapping[str, Any]]
) -> dict[int, str]:
    """Reasons by row position, from errors that name a trace id or an email."""
    positions = {email: i for i, (_, email) in enumerate(rows)}
    named: dict[int, str] = {}
    for error in errors:
        context = error.get("context") or {}
        if not isinstance(context, Mapping):
            continue
        reason = _message(error)
        for trace in context.get("objectWriteTraceId") or []:
            if str(trace).isdigit() and int(trace) < len(rows):
                named.setdefault(int(trace), reason)
        for value in context.get("ids") or []:
            if _text(value).lower() in positions:
                named.setdefault(positions[_text(value).lower()], reason)
    return named


def _result_email(rows: list[tuple[Record, str]], result: Mapping[str, Any]) -> str | None:
    trace = result.get("objectWriteTraceId")
    if trace is not None and str(trace).isdigit() and int(trace) < len(rows):
        return rows[int(trace)][1]
    email = _text((result.get("properties") or {}).get("email")).lower()
    return email or None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _message(error: Mapping[str, Any]) -> str:
    message = _text(error.get("message")) or "no reason given"
    category = _text(error.get("category"))
    return f"{category}: {message}" if category else message


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""
