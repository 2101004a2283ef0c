"""Meta (Facebook, Instagram) customer list custom audiences, through the Marketing API.

A sync in membership mode adds each row's person to one custom audience and removes them
again when they leave the Corral audience. Every batch is one call to the audience's
`users` edge (POST adds, DELETE removes) with a multi-key payload: a `schema` naming one
column per identifier (EMAIL, PHONE, FN, ...) and one `data` row per person.

The engine has already normalized and hashed the identifier fields by Meta's rules
(`corral.destinations.identifiers`, rules "meta") before a record reaches `send`; this
module only lays the values out. MADID and EXTERN_ID are sent in the clear, as Meta asks.

Each request carries its own one-batch upload session (`batch_seq` 1, `last_batch_flag`
true). A session spanning a whole run would need the engine to say which batch is the
last and to send them in order, and batches may run in parallel and be resent after a
crash; one session per request keeps every call independent and idempotent while still
giving Meta's per-session counts in the answer.

Throttling comes as a Graph error in a 400 answer, not as a 429: codes 17 and 613 (ad
account), 4 (app) and 80000-80014 (business use case; 80003 is the custom audience one).
Such a batch is handed back to the engine with the wait Meta names: the business use case
header's `estimated_time_to_regain_access` (minutes), else the ad account header's
`reset_time_duration` (seconds). Any answer whose usage header names a wait holds this
destination's other requests back as well.

Marketing API reference:
https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users
https://developers.facebook.com/docs/marketing-api/overview/rate-limiting
https://developers.facebook.com/docs/graph-api/overview/rate-limiting (usage headers)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

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
from corral.errors import (
    CorralError,
    DefinitionError,
    DestinationError,
    TransientDestinationError,
)

logger = logging.getLogger(__name__)

GRAPH_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v26.0"

# "You can add an unlimited number of records for an audience, but only a maximum of
# 10000 at a time" (Custom Audience Users reference).
MAX_ROWS_PER_REQUEST = 10_000

# Destination field -> multi-key schema column, in the order columns are sent.
SCHEMA_KEYS: dict[str, str] = {
    "email": "EMAIL",
    "phone": "PHONE",
    "first_name": "FN",
    "last_name": "LN",
    "city": "CT",
    "state": "ST",
    "zip": "ZIP",
    "country": "COUNTRY",
    "mobile_ad_id": "MADID",
    "external_id": "EXTERN_ID",
}
# Meta matches mobile advertiser ids as they are and takes external ids as given.
_UNHASHED = frozenset({"mobile_ad_id", "external_id"})

# Graph API error codes (https://developers.facebook.com/docs/graph-api/guides/error-handling,
# .../marketing-api/overview/rate-limiting): throttling and temporary failures pass with time.
_THROTTLED = frozenset({4, 17, 32, 613, *range(80000, 80015)})
_TEMPORARY = frozenset({1, 2})
# "Audience Upload Blocked" (code 100): the audience is flagged (operation_status 471) and
# takes no changes until someone resolves its restrictions in Audience Manager.
_FLAGGED_AUDIENCE = 1713230
# Credentials and permissions: a person must fix the token or the app's access.
_OAUTH_EXPIRED = 190
_PERMISSION = frozenset({10, 102, *range(200, 300)})

_NO_IDENTIFIER = "no usable identifier (email, phone, name and address, mobile_ad_id, external_id)"


class MetaCustomAudienceConfig(BaseModel):
    """Settings of the Meta custom audiences destination."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr = Field(
        description="A system user (or user) access token with the ads_management permission"
    )
    ad_account_id: str = Field(description="The ad account, with or without the act_ prefix")
    audience_id: str | None = Field(
        default=None, description="The custom audience to fill; or give audience_name"
    )
    audience_name: str | None = Field(
        default=None,
        description="Find or create a customer list custom audience of this name in the "
        "ad account when audience_id is not given",
    )
    audience_description: str | None = None
    customer_file_source: Literal[
        "USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY", "BOTH_USER_AND_PARTNER_PROVIDED"
    ] = Field(
        default="USER_PROVIDED_ONLY",
        description="Where the customer data of a created audience comes from",
    )
    api_version: str = Field(default=DEFAULT_API_VERSION, pattern=r"^v\d+\.\d+$")
    app_secret: SecretStr | None = Field(
        default=None,
        description="The app's secret; when given every call carries an appsecret_proof",
    )

    @model_validator(mode="after")
    def _one_audience(self) -> MetaCustomAudienceConfig:
        if not self.audience_id and not self.audience_name:
            raise ValueError("give audience_id, or audience_name to find or create one")
        return self

    @property
    def account(self) -> str:
        account = self.ad_account_id.strip()
        return account if account.startswith("act_") else f"act_{account}"


class MetaCustomAudienceDestination:
    """Adds people to and removes them from a Meta customer list custom audience."""

    catalog: ClassVar[Catalog] = Catalog(
        name="meta_custom_audiences",
        title="Meta custom audiences",
        modes=frozenset({Mode.MEMBERSHIP}),
        config=MetaCustomAudienceConfig,
        batch_size=MAX_ROWS_PER_REQUEST,
        # The custom_audience business-use-case quota, per ad account and hour (Marketing
        # API rate limiting): 5,000 for an app in the development tier, 190,000 in the
        # standard tier, each plus 40 per active custom audience, at most 700,000. We keep
        # to the floor every app has; Meta's usage headers slow us further when needed.
        rate_limit=RateLimit(requests=5_000, per_seconds=3_600),
        concurrency=2,
        identifiers={
            field: Identifier(field, "meta", hashed=field not in _UNHASHED) for field in SCHEMA_KEYS
        },
        # A person who leaves under one key and enters under another with the same email
        # must end up in the audience: remove before adding.
        removals_first=True,
        docs="docs/destinations/meta.md",
    )

    def __init__(
        self,
        config: MetaCustomAudienceConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.audience_id = config.audience_id
        self._fields: list[str] = list(SCHEMA_KEYS)
        self._http = HttpClient(
            destination=self.catalog.name,
            base_url=f"{GRAPH_URL}/{config.api_version}",
            rate_limit=self.catalog.rate_limit,
            headers={"Authorization": f"Bearer {config.access_token.get_secret_value()}"},
            transport=transport,
            sleep=sleep,
            clock=clock,
            throttle=_regain_access_after,
        )

    def open(self, mode: Mode, fields: Sequence[str]) -> None:
        if mode is not Mode.MEMBERSHIP:
            raise DefinitionError(
                f"the meta_custom_audiences destination cannot sync in {mode.value} mode",
                hint="use mode: membership",
            )
        self._fields = [field for field in SCHEMA_KEYS if field in fields]
        if not self._fields:
            raise DefinitionError(
                "the sync maps no identifier to the meta_custom_audiences destination",
                hint="map at least one of: " + ", ".join(SCHEMA_KEYS),
            )
        if self.audience_id is None:
            self.audience_id = self._find_or_create_audience()

    def send(self, batch: Batch) -> list[RowResult]:
        schema = [SCHEMA_KEYS[field] for field in self._fields]
        results: list[RowResult] = []
        rows: list[tuple[str, list[str]]] = []
        for record in batch.records:
            row = self._row(record)
            if row is None:
                results.append(RowResult.rejected(record.key, _NO_IDENTIFIER))
            else:
                rows.append((record.key, row))

        method = "DELETE" if batch.operation is Operation.REMOVE else "POST"
        for chunk in _chunks(rows, MAX_ROWS_PER_REQUEST):
            results.extend(self._upload(method, schema, chunk))
        return results

    def poll(self, job: Job) -> list[RowResult] | Job:
        raise DestinationError(
            "the meta_custom_audiences destination answers every batch at once; "
            f"it has no job {job.id!r} to poll",
            where=self.catalog.name,
        )

    def check(self) -> CheckResult:
        target = self.audience_id or self.config.account
        try:
            response = self._http.request(
                "GET", f"/{target}", params=self._params({"fields": "id,name"})
            )
            _raise_for_graph_error(response, f"reading {target}")
        except CorralError as error:
            return CheckResult(False, error.message)
        name = response.json().get("name", target)
        return CheckResult(True, f"can reach {name!r} ({target})")

    def close(self) -> None:
        self._http.close()

    def _row(self, record: Record) -> list[str] | None:
        """The record's values in schema order ("" where missing), or None if all are."""
        row = [_text(record.fields.get(field)) for field in self._fields]
        return row if any(row) else None

    def _upload(
        self, method: str, schema: list[str], rows: list[tuple[str, list[str]]]
    ) -> list[RowResult]:
        body = {
            "payload": {"schema": schema, "is_raw": True, "data": [row for _, row in rows]},
            "session": {
                "session_id": secrets.randbits(62),
                "batch_seq": 1,
                "last_batch_flag": True,
                "estimated_num_total": len(rows),
            },
        }
        response = self._http.request(
            method,
            f"/{self.audience_id}/users",
            records=len(rows),
            json=body,
            params=self._params({}),
        )
        error = _graph_error(response)
        if error is not None:
            _raise_unless_row_error(response, error, f"uploading to audience {self.audience_id}")
            reason = f"Meta refused the batch: {error.get('message', 'no message')}"
            return [RowResult.rejected(key, reason) for key, _ in rows]
        return _row_results(response.json(), rows, schema)

    def _find_or_create_audience(self) -> str:
        name = self.config.audience_name
        assert name is not None  # the config requires audience_id or audience_name
        for audience in self._audiences():
            if audience.get("name") == name:
                logger.info("using Meta custom audience %s named %r", audience["id"], name)
                return str(audience["id"])

        body: dict[str, Any] = {
            "name": name,
            "subtype": "CUSTOM",
            "customer_file_source": self.config.customer_file_source,
        }
        if self.config.audience_description:
            body["description"] = self.config.audience_description
        response = self._http.request(
            "POST", f"/{self.config.account}/customaudiences", json=body, params=self._params({})
        )
        _raise_for_graph_error(response, f"creating the custom audience {name!r}")
        audience_id = str(response.json()["id"])
        logger.info("created Meta custom audience %s named %r", audience_id, name)
        return audience_id

    def _audiences(self) -> Iterator[Mapping[str, Any]]:
        """The ad account's custom audiences, page by page."""
        params: dict[str, Any] = {"fields": "id,name", "limit": 500}
        while True:
            response = self._http.request(
                "GET", f"/{self.config.account}/customaudiences", params=self._params(params)
            )
            _raise_for_graph_error(response, "listing the ad account's custom audiences")
            page = response.json()
            yield from page.get("data", [])
            after = page.get("paging", {}).get("cursors", {}).get("after")
            if not after or "next" not in page.get("paging", {}):
                return
            params = {**params, "after": after}

    def _params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Query parameters plus the app secret proof, when an app secret is configured."""
        if self.config.app_secret is None:
            return dict(params)
        return {**params, "appsecret_proof": appsecret_proof(self.config)}


def appsecret_proof(config: MetaCustomAudienceConfig) -> str:
    """HMAC-SHA256 of the access token keyed by the app secret, as hex (Graph API security)."""
    assert config.app_secret is not None
    return hmac.new(
        config.app_secret.get_secret_value().encode(),
        config.access_token.get_secret_value().encode(),
        hashlib.sha256,
    ).hexdigest()


def _row_results(
    answer: Mapping[str, Any], rows: list[tuple[str, list[str]]], schema: list[str]
) -> list[RowResult]:
    """Accept every row but those Meta names among its invalid entries.

    Meta answers with counts and a sample of invalid entries keyed by the value it could
    not use; rows holding such a value are rejected. Invalid rows beyond the sample cannot
    be told apart and count as delivered; Meta ignores them.
    """
    samples = answer.get("invalid_entry_samples") or {}
    reasons = _sample_reasons(samples)
    results: list[RowResult] = []
    for key, row in rows:
        bad = [
            (column, reasons[value])
            for column, value in zip(schema, row, strict=True)
            if value and value in reasons
        ]
        if bad:
            detail = "; ".join(f"{column}: {reason}" for column, reason in bad)
            results.append(RowResult.rejected(key, f"Meta found an invalid entry ({detail})"))
        else:
            results.append(RowResult.accepted(key))

    invalid = int(answer.get("num_invalid_entries") or 0)
    identified = sum(1 for result in results if result.reason is not None)
    if invalid > identified:
        logger.warning(
            "Meta reported %d invalid entries in session %s but named only %d; "
            "the others count as delivered",
            invalid,
            answer.get("session_id"),
            identified,
        )
    return results


def _sample_reasons(samples: object) -> dict[str, str]:
    if isinstance(samples, Mapping):
        return {str(value): str(reason) for value, reason in samples.items()}
    if isinstance(samples, list):
        return {str(value): "invalid entry" for value in samples}
    return {}


def _graph_error(response: httpx.Response) -> dict[str, Any] | None:
    if response.is_success:
        return None
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        return error
    return {"message": f"HTTP {response.status_code}: {response.text[:200]}"}


def _raise_for_graph_error(response: httpx.Response, doing: str) -> None:
    error = _graph_error(response)
    if error is not None:
        _raise_unless_row_error(response, error, doing)
        raise DestinationError(
            f"Meta refused {doing}: {error.get('message')} (code {error.get('code')})",
            where="meta_custom_audiences",
            hint="check ad_account_id, audience_id and the token's access to them",
        )


def _raise_unless_row_error(response: httpx.Response, error: Mapping[str, Any], doing: str) -> None:
    """Raise for errors about the connection or credentials; return for those about data."""
    code = error.get("code")
    message = f"Meta refused {doing}: {error.get('message')} (code {code})"
    if code in _THROTTLED or code in _TEMPORARY or error.get("is_transient"):
        raise TransientDestinationError(
            message,
            where="meta_custom_audiences",
            hint="Meta throttles calls per app, ad account and audience; Corral retries later",
            retry_after=_regain_access_after(response),
        )
    if error.get("error_subcode") == _FLAGGED_AUDIENCE:
        raise DestinationError(
            message,
            where="meta_custom_audiences",
            hint="Meta flagged the audience (operation_status 471): resolve its restrictions "
            "in Audience Manager, or sync to a new audience",
        )
    if code == _OAUTH_EXPIRED:
        raise DestinationError(
            message,
            where="meta_custom_audiences",
            hint="the access token is invalid or expired: issue a new (system user) token "
            "with ads_management and update access_token",
        )
    if code in _PERMISSION or response.status_code == 404:
        raise DestinationError(
            message,
            where="meta_custom_audiences",
            hint="check that the token's user may manage this ad account and audience",
        )


def _regain_access_after(response: httpx.Response) -> float | None:
    """Seconds until Meta lifts a throttle, from its usage headers; None when none is named.

    `X-Business-Use-Case-Usage` maps business ids to entries whose
    `estimated_time_to_regain_access` is in minutes; `X-Ad-Account-Usage` carries
    `reset_time_duration` in seconds, which counts only once the account's quota is spent.
    """
    minutes = [
        float(entry.get("estimated_time_to_regain_access") or 0)
        for entries in _usage(response, "X-Business-Use-Case-Usage").values()
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, Mapping)
    ]
    if minutes and max(minutes) > 0:
        return max(minutes) * 60

    account = _usage(response, "X-Ad-Account-Usage")
    try:
        spent = float(account.get("acc_id_util_pct") or 0) >= 100
        reset = float(account.get("reset_time_duration") or 0)
    except (TypeError, ValueError):
        return None
    return reset if spent and reset > 0 else None


def _usage(response: httpx.Response, header: str) -> Mapping[str, Any]:
    try:
        usage = json.loads(response.headers.get(header) or "{}")
    except ValueError:
        return {}
    return usage if isinstance(usage, Mapping) else {}


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _chunks(rows: list[tuple[str, list[str]]], size: int) -> Iterator[list[tuple[str, list[str]]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
