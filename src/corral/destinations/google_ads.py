"""Google Ads Customer Match, through the Google Ads API's offline user data jobs (REST).

A sync in membership mode adds each row's person to one Customer Match user list and
removes them when they leave the Corral audience. Each batch becomes one offline user
data job: `offlineUserDataJobs:create`, then `:addOperations` in requests of at most
`IDENTIFIERS_PER_REQUEST` identifiers (partial failure on, so Google names the bad
rows), then `:run`. Google processes a job in the background, often for hours, so `send`
answers with a `Job` and `poll` asks GoogleAdsService for the job's status until it has
succeeded or failed.

The engine has already normalized and hashed the identifier fields by Google's rules
(`corral.destinations.identifiers`, rules "google"); this module lays them out as
`UserIdentifier`s. A user list takes one kind of key (its upload key type): contact
information, a CRM id or a mobile advertising id, so `upload_key_type` chooses which
fields are sent.

A quota error (`RESOURCE_EXHAUSTED`, HTTP 429) may name the wait in its
`QuotaErrorDetails.retry_delay`; the HTTP layer waits that long, or hands the rows back to
the engine with it when it is longer than a thread should block.

Calls are authorized with an OAuth access token obtained from the refresh token at
https://oauth2.googleapis.com/token, through the same transport, and refreshed when it
expires or a call answers 401.

API reference: https://developers.google.com/google-ads/api/rest/reference/rest
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

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

ADS_URL = "https://googleads.googleapis.com"
TOKEN_URL = "https://oauth2.googleapis.com"
# The newest Google Ads API version whose protobuf types the google-ads package we test
# against (34.x) carries; the contract tests parse every request body with them.
DEFAULT_API_VERSION = "v26"

# Google allows at most 100,000 user identifiers in one AddOfflineUserDataJobOperations
# request and 20 in one operation (OfflineUserDataJobError TOO_MANY_USER_IDENTIFIERS),
# and recommends about 10,000 a request for the best throughput.
MAX_IDENTIFIERS_PER_REQUEST = 100_000
MAX_IDENTIFIERS_PER_OPERATION = 20
IDENTIFIERS_PER_REQUEST = 10_000
# One job per batch; Google recommends few large jobs over many small ones.
RECORDS_PER_JOB = 100_000

FIRST_POLL_SECONDS = 60.0
MAX_POLL_SECONDS = 900.0
FAILED_JOB_RETRY_SECONDS = 300.0

_ADDRESS_FIELDS = ("first_name", "last_name", "country", "zip")
_FIELDS_BY_KEY_TYPE: dict[str, tuple[str, ...]] = {
    "contact_info": ("email", "phone", *_ADDRESS_FIELDS),
    "crm_id": ("external_id",),
    "mobile_advertising_id": ("mobile_ad_id",),
}
_HASHED = frozenset({"email", "phone", "first_name", "last_name"})
_ALL_FIELDS = ("email", "phone", *_ADDRESS_FIELDS, "mobile_ad_id", "external_id")

# Errors that pass with time: quota, concurrent changes to the same list, Google's side.
_TRANSIENT_STATUSES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE", "ABORTED", "INTERNAL"})
_TRANSIENT_ERROR_CODES = frozenset(
    {"RESOURCE_EXHAUSTED", "RESOURCE_TEMPORARILY_EXHAUSTED", "CONCURRENT_MODIFICATION"}
)
_CREDENTIAL_STATUSES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
# A protobuf Duration in JSON: "30s", "1.5s".
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
_JOB_NAME = re.compile(r"customers/\d+/offlineUserDataJobs/\d+")
_NAME = "google_customer_match"


class GoogleCustomerMatchConfig(BaseModel):
    """Settings of the Google Customer Match destination."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(description="The Google Ads account that owns the user list")
    user_list_id: str = Field(description="The Customer Match user list to fill")
    developer_token: SecretStr
    client_id: str = Field(description="The OAuth client id")
    client_secret: SecretStr
    refresh_token: SecretStr = Field(description="An OAuth refresh token with the adwords scope")
    login_customer_id: str | None = Field(
        default=None, description="The manager account to act through, if any"
    )
    upload_key_type: Literal["contact_info", "crm_id", "mobile_advertising_id"] = Field(
        default="contact_info",
        description="The user list's upload key type, which decides which fields are sent",
    )
    ad_user_data_consent: Literal["GRANTED", "DENIED"] | None = Field(
        default=None, description="Consent to send user data to Google, for added members"
    )
    ad_personalization_consent: Literal["GRANTED", "DENIED"] | None = Field(
        default=None, description="Consent to personalized advertising, for added members"
    )
    api_version: str = Field(default=DEFAULT_API_VERSION, pattern=r"^v\d+$")

    @field_validator("customer_id", "login_customer_id", "user_list_id")
    @classmethod
    def _digits(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = value.replace("-", "").strip()
        if not digits.isdigit():
            raise ValueError("must be a number, such as 123-456-7890")
        return digits

    @property
    def user_list(self) -> str:
        return f"customers/{self.customer_id}/userLists/{self.user_list_id}"


class GoogleCustomerMatchDestination:
    """Adds people to and removes them from a Google Ads Customer Match user list."""

    catalog: ClassVar[Catalog] = Catalog(
        name="google_customer_match",
        title="Google Ads Customer Match",
        modes=frozenset({Mode.MEMBERSHIP}),
        config=GoogleCustomerMatchConfig,
        batch_size=RECORDS_PER_JOB,
        # Google publishes no request rate for these calls, only daily operation quotas
        # by access level; the client backs off on RESOURCE_EXHAUSTED (HTTP 429).
        rate_limit=None,
        # Jobs that change one user list at the same time fail with CONCURRENT_MODIFICATION.
        concurrency=1,
        identifiers={
            field: Identifier(field, "google", hashed=field in _HASHED) for field in _ALL_FIELDS
        },
        removals_first=True,
        asynchronous=True,
        docs="docs/destinations/google-customer-match.md",
    )

    def __init__(
        self,
        config: GoogleCustomerMatchConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`transport` carries both the token exchange and the API calls; `clock` times
        the access token's expiry, for tests."""
        self.config = config
        self._fields = _FIELDS_BY_KEY_TYPE[config.upload_key_type]
        self._token = GoogleOAuth(config, transport=transport, clock=clock)
        headers = {"developer-token": config.developer_token.get_secret_value()}
        if config.login_customer_id:
            headers["login-customer-id"] = config.login_customer_id
        self._http = HttpClient(
            destination=self.catalog.name,
            base_url=f"{ADS_URL}/{config.api_version}",
            headers=headers,
            auth=self._token,
            transport=transport,
            throttle=quota_retry_delay,
        )

    def open(self, mode: Mode, fields: Sequence[str]) -> None:
        if mode is not Mode.MEMBERSHIP:
            raise DefinitionError(
                f"the google_customer_match destination cannot sync in {mode.value} mode",
                hint="use mode: membership",
            )
        if not any(field in fields for field in self._fields):
            raise DefinitionError(
                f"the sync maps none of the fields a {self.config.upload_key_type} "
                "Customer Match list takes",
                hint="map at least one of: " + ", ".join(self._fields),
            )

    def send(self, batch: Batch) -> list[RowResult] | Job:
        rejected: dict[str, str] = {}
        operations: list[tuple[str, list[dict[str, Any]]]] = []
        for record in batch.records:
            identifiers = self._identifiers(record)
            if identifiers:
                operations.append((record.key, identifiers))
            else:
                rejected[record.key] = _no_identifier(self._fields)
        if not operations:
            return [RowResult.rejected(key, reason) for key, reason in rejected.items()]

        job = self._create_job(batch.operation)
        verb = "remove" if batch.operation is Operation.REMOVE else "create"
        for chunk in _requests(operations):
            rejected.update(self._add_operations(job, verb, chunk))
        if len(rejected) == len(batch.records):
            logger.warning("Google rejected every row of job %s; it is not run", job)
            return [RowResult.rejected(key, reason) for key, reason in rejected.items()]

        self._run(job)
        return Job(
            id=job,
            keys=[record.key for record in batch.records],
            poll_after=FIRST_POLL_SECONDS,
            data={"rejected": rejected},
        )

    def poll(self, job: Job) -> list[RowResult] | Job:
        status, failure = self._job_status(job.id)
        if status in ("PENDING", "RUNNING", None):
            logger.debug("Google job %s is %s", job.id, status or "not visible yet")
            return Job(
                id=job.id,
                keys=job.keys,
                poll_after=min(MAX_POLL_SECONDS, job.poll_after * 2),
                data=job.data,
            )

        rejected: Mapping[str, str] = job.data.get("rejected", {})
        if status == "SUCCESS":
            logger.info("Google job %s succeeded", job.id)
            return [
                RowResult.rejected(key, rejected[key])
                if key in rejected
                else RowResult.accepted(key)
                for key in job.keys
            ]

        reason = f"Google's job {job.id} ended {status} ({failure or 'no reason given'})"
        logger.warning("%s; its rows are retried", reason)
        return [
            RowResult.rejected(key, rejected[key])
            if key in rejected
            else RowResult.retry(key, reason, FAILED_JOB_RETRY_SECONDS)
            for key in job.keys
        ]

    def check(self) -> CheckResult:
        query = _gaql("user_list", ("id", "name"), self.config.user_list)
        try:
            rows = self._search(query)
        except CorralError as error:
            return CheckResult(False, error.message)
        if not rows:
            return CheckResult(False, f"there is no user list {self.config.user_list}")
        name = rows[0].get("userList", {}).get("name", self.config.user_list_id)
        return CheckResult(True, f"can reach the user list {name!r}")

    def close(self) -> None:
        self._http.close()
        self._token.close()

    def _identifiers(self, record: Record) -> list[dict[str, Any]]:
        """The record's `UserIdentifier`s for the list's key type; empty when it has none."""
        value = {field: _text(record.fields.get(field)) for field in self._fields}
        identifiers: list[dict[str, Any]] = []
        if value.get("email"):
            identifiers.append({"hashedEmail": value["email"]})
        if value.get("phone"):
            identifiers.append({"hashedPhoneNumber": value["phone"]})
        # Google matches an address only with all four parts.
        if all(value.get(field) for field in _ADDRESS_FIELDS):
            identifiers.append(
                {
                    "addressInfo": {
                        "hashedFirstName": value["first_name"],
                        "hashedLastName": value["last_name"],
                        "countryCode": value["country"],
                        "postalCode": value["zip"],
                    }
                }
            )
        if value.get("external_id"):
            identifiers.append({"thirdPartyUserId": value["external_id"]})
        if value.get("mobile_ad_id"):
            identifiers.append({"mobileId": value["mobile_ad_id"]})
        return identifiers[:MAX_IDENTIFIERS_PER_OPERATION]  # at most 5 today; a guard

    def _create_job(self, operation: Operation) -> str:
        metadata: dict[str, Any] = {"userList": self.config.user_list}
        consent = {
            name: value
            for name, value in (
                ("adUserData", self.config.ad_user_data_consent),
                ("adPersonalization", self.config.ad_personalization_consent),
            )
            if value is not None
        }
        # Google reads consent for added members only; removals need none.
        if consent and operation is not Operation.REMOVE:
            metadata["consent"] = consent
        body = {
            "job": {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": metadata}
        }
        answer = self._call(
            "POST", f"/customers/{self.config.customer_id}/offlineUserDataJobs:create", body
        )
        job = str(answer["resourceName"])
        logger.info("created Google offline user data job %s for %s", job, self.config.user_list)
        return job

    def _add_operations(
        self, job: str, verb: str, chunk: list[tuple[str, list[dict[str, Any]]]]
    ) -> dict[str, str]:
        """Add one request's operations; the rows Google rejected, with its reasons."""
        body = {
            "enablePartialFailure": True,
            "operations": [{verb: {"userIdentifiers": ids}} for _, ids in chunk],
        }
        answer = self._call("POST", f"/{job}:addOperations", body, records=len(chunk))
        failure = answer.get("partialFailureError")
        if not failure:
            return {}
        return _partial_failures(failure, [key for key, _ in chunk])

    def _run(self, job: str) -> None:
        answer = self._call("POST", f"/{job}:run", {})
        logger.info("running Google job %s (operation %s)", job, answer.get("name"))

    def _job_status(self, job: str) -> tuple[str | None, str | None]:
        if not _JOB_NAME.fullmatch(job):
            raise DestinationError(f"{job!r} is not an offline user data job", where=_NAME)
        query = _gaql("offline_user_data_job", ("status", "failure_reason"), job)
        rows = self._search(query)
        if not rows:
            return None, None
        found = rows[0].get("offlineUserDataJob", {})
        return found.get("status"), found.get("failureReason")

    def _search(self, query: str) -> list[dict[str, Any]]:
        answer = self._call(
            "POST", f"/customers/{self.config.customer_id}/googleAds:search", {"query": query}
        )
        results: list[dict[str, Any]] = answer.get("results", [])
        return results

    def _call(
        self, method: str, path: str, body: Mapping[str, Any], *, records: int = 0
    ) -> dict[str, Any]:
        response = self._http.request(method, path, json=body, records=records)
        if response.is_success:
            answer: dict[str, Any] = response.json() if response.content else {}
            return answer
        raise _api_error(response, f"{method} {path.split(':')[-1]}")


class GoogleOAuth(httpx.Auth):
    """Bearer tokens from an OAuth refresh token, fetched when missing, expired or refused."""

    def __init__(
        self,
        config: GoogleCustomerMatchConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._http = HttpClient(
            destination="google_customer_match (OAuth)", base_url=TOKEN_URL, transport=transport
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.token(refresh=True)}"
            yield request

    def token(self, *, refresh: bool = False) -> str:
        with self._lock:
            if refresh or self._token is None or self._clock() >= self._expires_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def close(self) -> None:
        self._http.close()

    def _fetch(self) -> None:
        form = {
            "grant_type": "refresh_token",
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret.get_secret_value(),
            "refresh_token": self._config.refresh_token.get_secret_value(),
        }
        response = self._http.request(
            "POST",
            "/token",
            content=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        answer = response.json() if response.content else {}
        if not response.is_success or "access_token" not in answer:
            raise DestinationError(
                "Google refused to issue an access token: "
                f"{answer.get('error_description') or answer.get('error') or response.status_code}",
                where=_NAME,
                hint="check client_id, client_secret and refresh_token; a revoked or expired "
                "refresh token must be issued again with the adwords scope",
            )
        self._token = str(answer["access_token"])
        # Renew a minute early so a token never expires between fetch and use.
        self._expires_at = self._clock() + float(answer.get("expires_in", 3600)) - 60


def _partial_failures(failure: Mapping[str, Any], keys: Sequence[str]) -> dict[str, str]:
    """Row key -> Google's reason, from a partial failure's errors located by operation index."""
    rejected: dict[str, str] = {}
    for error in _ads_errors(failure):
        index = _operation_index(error)
        if index is None or not 0 <= index < len(keys):
            logger.warning("Google reported an error for no operation: %s", error.get("message"))
            continue
        code = ", ".join(f"{kind}: {value}" for kind, value in error.get("errorCode", {}).items())
        reason = f"Google rejected the identifiers: {error.get('message', 'no message')}"
        rejected[keys[index]] = f"{reason} ({code})" if code else reason
    return rejected


def _ads_errors(status: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for detail in status.get("details", []):
        yield from detail.get("errors", [])


def _operation_index(error: Mapping[str, Any]) -> int | None:
    for element in error.get("location", {}).get("fieldPathElements", []):
        if element.get("fieldName") == "operations" and "index" in element:
            return int(element["index"])
    return None


def _api_error(response: httpx.Response, doing: str) -> DestinationError:
    """The error for a failed call: transient for quota and concurrency, else for good."""
    try:
        status: Mapping[str, Any] = response.json().get("error", {})
    except ValueError:
        status = {}
    codes = {
        value for error in _ads_errors(status) for value in error.get("errorCode", {}).values()
    }
    messages = [error.get("message", "") for error in _ads_errors(status)]
    message = f"Google Ads refused {doing} with HTTP {response.status_code}: " + (
        "; ".join(m for m in messages if m) or status.get("message") or response.text[:200]
    )
    if status.get("status") in _TRANSIENT_STATUSES or codes & _TRANSIENT_ERROR_CODES:
        return TransientDestinationError(
            message,
            where=_NAME,
            hint="Google's quota or a concurrent change to the list; Corral retries later",
            retry_after=_retry_delay(status),
        )
    hint = (
        "check the developer token, the OAuth client and that its user may manage customer_id"
        if status.get("status") in _CREDENTIAL_STATUSES
        else "check customer_id, user_list_id and the list's upload key type"
    )
    return DestinationError(message, where=_NAME, hint=hint)


def quota_retry_delay(response: httpx.Response) -> float | None:
    """The wait a quota error names (`QuotaErrorDetails.retry_delay`), for the HTTP layer."""
    if response.status_code != 429:
        return None
    try:
        status = response.json().get("error", {})
    except (ValueError, AttributeError):
        return None
    return _retry_delay(status) if isinstance(status, Mapping) else None


def _retry_delay(status: Mapping[str, Any]) -> float | None:
    """The longest `retryDelay` among the errors' quota details, in seconds."""
    delays = []
    for error in _ads_errors(status):
        quota = (error.get("details") or {}).get("quotaErrorDetails") or {}
        match = _DURATION.match(str(quota.get("retryDelay") or ""))
        if match:
            delays.append(float(match.group(1)))
    return max(delays) if delays else None


def _gaql(resource: str, fields: Sequence[str], name: str) -> str:
    """A GAQL query for `fields` of the one `resource` named `name`.

    GAQL is not SQL, and the names we pass are built from ids checked to be digits, so
    there is nothing to escape.
    """
    columns = ", ".join(f"{resource}.{field}" for field in fields)
    return f"SELECT {columns} FROM {resource} WHERE {resource}.resource_name = '{name}'"  # noqa: S608


def _requests(
    operations: list[tuple[str, list[dict[str, Any]]]],
) -> Iterator[list[tuple[str, list[dict[str, Any]]]]]:
    """Operations grouped into requests of at most `IDENTIFIERS_PER_REQUEST` identifiers."""
    chunk: list[tuple[str, list[dict[str, Any]]]] = []
    count = 0
    for key, identifiers in operations:
        if chunk and count + len(identifiers) > IDENTIFIERS_PER_REQUEST:
            yield chunk
            chunk, count = [], 0
        chunk.append((key, identifiers))
        count += len(identifiers)
    if chunk:
        yield chunk


def _no_identifier(fields: Sequence[str]) -> str:
    reason = "no usable identifier (" + ", ".join(fields) + ")"
    if "zip" in fields:
        reason += "; an address counts only with first_name, last_name, country and zip"
    return reason


def _text(value: object) -> str:
    return "" if value is None else str(value)
