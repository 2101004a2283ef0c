"""The Google Customer Match destination, against Google's own types and normalizer.

Two oracles from Google stand in for an API description:

- google-ads carries the protobuf message of every request of every API version. Each
  JSON body we send is parsed with `json_format.Parse(..., ignore_unknown_fields=False)`
  into its request message, so a misspelled or misplaced field fails the test. The fake
  server's answers are parsed into their response messages too, so the fakes cannot
  drift from what Google sends back.
- google-ads-datamanager-util is Google's normalizer: the identifiers we send must equal
  what it produces from the same raw values.

Requests are captured with `httpx.MockTransport`; nothing leaves the process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import google.ads.googleads
import httpx
import pytest
from google.ads.datamanager_util import Encoding, Formatter
from google.ads.googleads.v26.errors.types import errors as ads_errors
from google.ads.googleads.v26.services.types import google_ads_service
from google.ads.googleads.v26.services.types import offline_user_data_job_service as jobs
from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from corral.destinations import create, google_ads
from corral.destinations.base import Batch, Job, Mode, Operation, Outcome, Record
from corral.destinations.google_ads import (
    DEFAULT_API_VERSION,
    IDENTIFIERS_PER_REQUEST,
    MAX_IDENTIFIERS_PER_OPERATION,
    MAX_IDENTIFIERS_PER_REQUEST,
    GoogleCustomerMatchConfig,
    GoogleCustomerMatchDestination,
)
from corral.destinations.identifiers import prepare
from corral.errors import DefinitionError, DestinationError, TransientDestinationError

CUSTOMER = "1234567890"
JOB = f"customers/{CUSTOMER}/offlineUserDataJobs/555"
FAILURE_TYPE = (
    f"type.googleapis.com/google.ads.googleads.{DEFAULT_API_VERSION}.errors.GoogleAdsFailure"
)

# Raw warehouse values, written as CRMs hold them.
PEOPLE: list[dict[str, str]] = [
    {
        "email": " John.Doe+promo@GMail.com ",
        "phone": "+1 (650) 555-0123",
        "first_name": " John ",
        "last_name": "DOE",
        "country": "us",
        "zip": " 94103 ",
        "mobile_ad_id": "AECE52E7-03EE-455A-B3C4-E57283966239",
        "external_id": "CRM-42",
    },
    {
        "email": "Ana.Silva@Example.COM",
        "phone": "+44 20 7946 0958",
        "first_name": "Ana",
        "last_name": "Silva",
        "country": "GB",
        "zip": "N1 9GU",
        "mobile_ad_id": "6d92078a-8246-4ba4-ae5b-76104861e7dc",
        "external_id": "CRM-43",
    },
]

# The request message each REST method's body is, and the response message of its answer.
REQUESTS: dict[str, type[Any]] = {
    "offlineUserDataJobs:create": jobs.CreateOfflineUserDataJobRequest,
    ":addOperations": jobs.AddOfflineUserDataJobOperationsRequest,
    ":run": jobs.RunOfflineUserDataJobRequest,
    "googleAds:search": google_ads_service.SearchGoogleAdsRequest,
}
RESPONSES: dict[str, Callable[[], Message]] = {
    "offlineUserDataJobs:create": jobs.CreateOfflineUserDataJobResponse.pb(),
    ":addOperations": jobs.AddOfflineUserDataJobOperationsResponse.pb(),
    ":run": operations_pb2.Operation,
    "googleAds:search": google_ads_service.SearchGoogleAdsResponse.pb(),
}


def method_of(path: str) -> str:
    return next(name for name in REQUESTS if path.endswith(name))


def parse(text: str | bytes, message: Callable[[], Message]) -> Message:
    return json_format.Parse(text, message(), ignore_unknown_fields=False)


class FakeGoogle:
    """Google's token endpoint and Ads API: validates every body, records every request."""

    def __init__(self, **answers: Callable[[httpx.Request], Any]) -> None:
        self.answers = {
            "offlineUserDataJobs:create": lambda request: {"resourceName": JOB},
            ":addOperations": lambda request: {},
            ":run": lambda request: {"name": f"customers/{CUSTOMER}/operations/op-1"},
            "googleAds:search": job_status("SUCCESS"),
            **answers,
        }
        self.requests: list[httpx.Request] = []
        self.tokens = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "oauth2.googleapis.com":
            self.tokens += 1
            return httpx.Response(
                200, json={"access_token": f"ya29.token-{self.tokens}", "expires_in": 3599}
            )

        method = method_of(request.url.path)
        parse(request.content, REQUESTS[method].pb())  # the contract: our body is the request
        answer = self.answers[method](request)
        if isinstance(answer, httpx.Response):
            return answer
        parse(json.dumps(answer), RESPONSES[method])  # and our fake answers are Google's
        return httpx.Response(200, json=answer)

    def ads(self, method: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith(method)]

    def bodies(self, method: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.ads(method)]


def job_status(status: str, failure: str | None = None) -> Callable[[httpx.Request], Any]:
    def answer(request: httpx.Request) -> Any:
        found: dict[str, Any] = {"resourceName": JOB, "status": status}
        if failure:
            found["failureReason"] = failure
        return {"results": [{"offlineUserDataJob": found}]}

    return answer


def settings(**overrides: Any) -> dict[str, Any]:
    return {
        "customer_id": "123-456-7890",
        "user_list_id": "987",
        "developer_token": "dev-token",
        "client_id": "client.apps.googleusercontent.com",
        "client_secret": "client-secret",
        "refresh_token": "1//refresh",
        **overrides,
    }


def make(fake: FakeGoogle, **overrides: Any) -> GoogleCustomerMatchDestination:
    config = GoogleCustomerMatchConfig.model_validate(settings(**overrides))
    destination = GoogleCustomerMatchDestination(config, transport=httpx.MockTransport(fake))
    destination.open(Mode.MEMBERSHIP, list(GoogleCustomerMatchDestination.catalog.identifiers))
    return destination


def prepared(person: Mapping[str, object]) -> dict[str, str | None]:
    """What the sync engine hands the destination: each identifier prepared per the catalog."""
    identifiers = GoogleCustomerMatchDestination.catalog.identifiers
    return {
        field: prepare(
            identifiers[field].kind,
            value,
            identifiers[field].rules,
            hashed=identifiers[field].hashed,
        )
        for field, value in person.items()
    }


def records(people: Sequence[Mapping[str, object]]) -> list[Record]:
    return [Record(f"k{i}", prepared(person)) for i, person in enumerate(people)]


def sent_job(destination: GoogleCustomerMatchDestination, batch: Batch) -> Job:
    job = destination.send(batch)
    assert isinstance(job, Job)
    return job


# The contract: Google's request types and Google's normalizer.


def test_the_api_version_is_the_newest_the_google_ads_package_carries() -> None:
    package = Path(google.ads.googleads.__file__).parent
    newest = max(int(p.name[1:]) for p in package.glob("v[0-9]*") if p.is_dir())
    assert f"v{newest}" == DEFAULT_API_VERSION


@pytest.mark.parametrize("operation", [Operation.ADD, Operation.CHANGE, Operation.REMOVE])
def test_every_body_parses_as_its_request_message(operation: Operation) -> None:
    fake = FakeGoogle()
    destination = make(fake, ad_user_data_consent="GRANTED", ad_personalization_consent="DENIED")

    job = sent_job(destination, Batch(operation, records(PEOPLE)))
    destination.poll(job)

    called = [method_of(r.url.path) for r in fake.requests if r.url.host != "oauth2.googleapis.com"]
    assert called == [
        "offlineUserDataJobs:create",
        ":addOperations",
        ":run",
        "googleAds:search",
    ]
    for request in fake.requests[1:]:
        assert request.url.path.startswith(f"/{DEFAULT_API_VERSION}/")

    (create_body,) = fake.bodies("offlineUserDataJobs:create")
    created = jobs.CreateOfflineUserDataJobRequest.pb()()
    json_format.ParseDict(create_body, created)
    assert created.job.customer_match_user_list_metadata.user_list == (
        f"customers/{CUSTOMER}/userLists/987"
    )
    assert json_format.MessageToDict(created.job)["type"] == "CUSTOMER_MATCH_USER_LIST"
    consent = created.job.customer_match_user_list_metadata.HasField("consent")
    assert consent is (operation is not Operation.REMOVE)  # removals carry no consent

    (add_body,) = fake.bodies(":addOperations")
    added = parse(json.dumps(add_body), jobs.AddOfflineUserDataJobOperationsRequest.pb())
    assert added.enable_partial_failure  # type: ignore[attr-defined]
    verb = "remove" if operation is Operation.REMOVE else "create"
    assert {op.WhichOneof("operation") for op in added.operations} == {verb}  # type: ignore[attr-defined]
    assert fake.ads(":addOperations")[0].url.path == f"/{DEFAULT_API_VERSION}/{JOB}:addOperations"


def test_identifiers_equal_what_googles_normalizer_produces() -> None:
    fake = FakeGoogle()
    destination = make(fake)

    sent_job(destination, Batch(Operation.ADD, records(PEOPLE)))

    formatter = Formatter()
    expected = [
        [
            {"hashedEmail": formatter.process_email_address(person["email"], Encoding.HEX)},
            {"hashedPhoneNumber": formatter.process_phone_number(person["phone"], Encoding.HEX)},
            {
                "addressInfo": {
                    "hashedFirstName": formatter.process_given_name(
                        person["first_name"], Encoding.HEX
                    ),
                    "hashedLastName": formatter.process_family_name(
                        person["last_name"], Encoding.HEX
                    ),
                    "countryCode": formatter.process_region_code(person["country"]),
                    "postalCode": formatter.process_postal_code(person["zip"]),
                }
            },
        ]
        for person in PEOPLE
    ]
    (body,) = fake.bodies(":addOperations")
    assert [op["create"]["userIdentifiers"] for op in body["operations"]] == expected


def test_crm_id_lists_get_third_party_user_ids_only() -> None:
    fake = FakeGoogle()
    destination = make(fake, upload_key_type="crm_id")

    sent_job(destination, Batch(Operation.ADD, records(PEOPLE)))

    (body,) = fake.bodies(":addOperations")
    assert [op["create"]["userIdentifiers"] for op in body["operations"]] == [
        [{"thirdPartyUserId": "CRM-42"}],
        [{"thirdPartyUserId": "CRM-43"}],
    ]


def test_mobile_lists_get_mobile_ids_unhashed() -> None:
    fake = FakeGoogle()
    destination = make(fake, upload_key_type="mobile_advertising_id")

    sent_job(destination, Batch(Operation.ADD, records(PEOPLE[:1])))

    (body,) = fake.bodies(":addOperations")
    assert body["operations"][0]["create"]["userIdentifiers"] == [
        {"mobileId": "aece52e7-03ee-455a-b3c4-e57283966239"}
    ]


def test_an_address_is_sent_only_with_all_four_parts() -> None:
    fake = FakeGoogle()
    destination = make(fake)
    partial = {**PEOPLE[0], "zip": None}

    sent_job(destination, Batch(Operation.ADD, records([partial])))

    (body,) = fake.bodies(":addOperations")
    kinds = [next(iter(i)) for i in body["operations"][0]["create"]["userIdentifiers"]]
    assert kinds == ["hashedEmail", "hashedPhoneNumber"]


# Limits from Google's documentation.


def test_catalog_and_request_sizes_keep_to_googles_limits() -> None:
    catalog = GoogleCustomerMatchDestination.catalog
    assert catalog.name == "google_customer_match"
    assert catalog.modes == frozenset({Mode.MEMBERSHIP})
    assert catalog.asynchronous
    assert catalog.concurrency == 1  # concurrent jobs on one list: CONCURRENT_MODIFICATION
    # At most 100,000 user identifiers per AddOfflineUserDataJobOperationsRequest and 20
    # per operation (OfflineUserDataJobError.TOO_MANY_USER_IDENTIFIERS).
    assert IDENTIFIERS_PER_REQUEST <= MAX_IDENTIFIERS_PER_REQUEST == 100_000
    assert MAX_IDENTIFIERS_PER_OPERATION == 20
    hashed = {f for f, identifier in catalog.identifiers.items() if identifier.hashed}
    assert hashed == {"email", "phone", "first_name", "last_name"}
    assert {identifier.rules for identifier in catalog.identifiers.values()} == {"google"}
    secrets = {"developer_token", "client_secret", "refresh_token"}
    properties = catalog.config_schema()["properties"]
    assert {name for name, p in properties.items() if p.get("writeOnly")} == secrets


def test_a_large_batch_is_added_in_requests_within_the_identifier_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(google_ads, "IDENTIFIERS_PER_REQUEST", 7)
    fake = FakeGoogle()
    destination = make(fake)

    sent_job(destination, Batch(Operation.ADD, records(PEOPLE * 4)))  # 8 rows x 3 identifiers

    counts = [
        [len(op["create"]["userIdentifiers"]) for op in body["operations"]]
        for body in fake.bodies(":addOperations")
    ]
    assert counts == [[3, 3], [3, 3], [3, 3], [3, 3]]
    assert all(sum(c) <= 7 for c in counts)
    assert len(fake.ads("offlineUserDataJobs:create")) == len(fake.ads(":run")) == 1


# Authorization.


def test_headers_and_one_token_from_the_refresh_token() -> None:
    fake = FakeGoogle()
    destination = make(fake, login_customer_id="111-222-3333")

    job = sent_job(destination, Batch(Operation.ADD, records(PEOPLE)))
    destination.poll(job)

    token_request, *calls = fake.requests
    assert str(token_request.url) == "https://oauth2.googleapis.com/token"
    assert parse_qs(token_request.content.decode()) == {
        "grant_type": ["refresh_token"],
        "client_id": ["client.apps.googleusercontent.com"],
        "client_secret": ["client-secret"],
        "refresh_token": ["1//refresh"],
    }
    assert fake.tokens == 1
    for request in calls:
        assert request.url.host == "googleads.googleapis.com"
        assert request.headers["Authorization"] == "Bearer ya29.token-1"
        assert request.headers["developer-token"] == "dev-token"
        assert request.headers["login-customer-id"] == "1112223333"


def test_an_expired_token_is_refreshed_when_google_answers_401() -> None:
    refused = {"done": False}

    def create_job(request: httpx.Request) -> Any:
        if not refused["done"]:
            refused["done"] = True
            return httpx.Response(401, json={"error": {"code": 401, "status": "UNAUTHENTICATED"}})
        return {"resourceName": JOB}

    fake = FakeGoogle(**{"offlineUserDataJobs:create": create_job})
    destination = make(fake)

    sent_job(destination, Batch(Operation.ADD, records(PEOPLE)))

    assert fake.tokens == 2
    assert fake.ads(":run")[0].headers["Authorization"] == "Bearer ya29.token-2"


def test_a_refused_refresh_token_is_a_permanent_error_with_a_hint() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"error": "invalid_grant", "error_description": "Token has been revoked."}
        )

    config = GoogleCustomerMatchConfig.model_validate(settings())
    destination = GoogleCustomerMatchDestination(config, transport=httpx.MockTransport(handler))
    with pytest.raises(DestinationError, match="Token has been revoked") as raised:
        destination.send(Batch(Operation.ADD, records(PEOPLE)))
    assert raised.value.hint and "refresh_token" in raised.value.hint


# Jobs and rows.


def test_poll_waits_while_the_job_runs_then_accepts_the_rows() -> None:
    states = iter(["PENDING", "RUNNING", "SUCCESS"])
    fake = FakeGoogle(**{"googleAds:search": lambda r: job_status(next(states))(r)})
    destination = make(fake)

    job = sent_job(destination, Batch(Operation.ADD, records(PEOPLE)))
    assert (job.id, job.keys, job.poll_after) == (JOB, ["k0", "k1"], 60.0)

    waits = []
    while isinstance(job, Job):
        waits.append(job.poll_after)
        job = destination.poll(job)
    assert waits == [60.0, 120.0, 240.0]
    assert [(r.key, r.outcome) for r in job] == [("k0", Outcome.ACCEPTED), ("k1", Outcome.ACCEPTED)]
    search = fake.bodies("googleAds:search")[0]["query"]
    assert f"WHERE offline_user_data_job.resource_name = '{JOB}'" in search


def test_a_failed_job_retries_its_rows() -> None:
    fake = FakeGoogle(**{"googleAds:search": job_status("FAILED", "UNKNOWN")})
    destination = make(fake)

    results = destination.poll(sent_job(destination, Batch(Operation.ADD, records(PEOPLE))))

    assert isinstance(results, list)
    assert {r.outcome for r in results} == {Outcome.RETRY}
    assert results[0].reason and "FAILED (UNKNOWN)" in results[0].reason


def test_partial_failures_reject_the_rows_google_names_across_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(google_ads, "IDENTIFIERS_PER_REQUEST", 3)  # one row a request

    def add(request: httpx.Request) -> Any:
        if (
            json.loads(request.content)["operations"][0]["create"]["userIdentifiers"][0][
                "hashedEmail"
            ]
            != prepared(PEOPLE[1])["email"]
        ):
            return {}
        failure = {
            "@type": FAILURE_TYPE,
            "errors": [
                {
                    "errorCode": {"offlineUserDataJobError": "INVALID_SHA256_FORMAT"},
                    "message": "The SHA256 encoded value is malformed.",
                    "location": {
                        "fieldPathElements": [
                            {"fieldName": "operations", "index": 0},
                            {"fieldName": "create"},
                            {"fieldName": "user_identifiers", "index": 0},
                        ]
                    },
                }
            ],
            "requestId": "req-1",
        }
        return {"partialFailureError": {"code": 3, "message": "bad", "details": [failure]}}

    assert ads_errors.GoogleAdsFailure  # the type the Any above resolves to
    fake = FakeGoogle(**{":addOperations": add})
    destination = make(fake)

    job = sent_job(destination, Batch(Operation.ADD, records(PEOPLE)))
    results = destination.poll(job)

    assert isinstance(results, list)
    assert results[0].outcome is Outcome.ACCEPTED
    assert results[1].outcome is Outcome.REJECTED
    assert results[1].reason == (
        "Google rejected the identifiers: The SHA256 encoded value is malformed. "
        "(offlineUserDataJobError: INVALID_SHA256_FORMAT)"
    )


def test_rows_without_a_usable_identifier_are_rejected_without_a_job() -> None:
    fake = FakeGoogle()
    destination = make(fake, upload_key_type="crm_id")

    results = destination.send(Batch(Operation.ADD, [Record("k", {"email": "e" * 64})]))

    assert isinstance(results, list)
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.REJECTED, "no usable identifier (external_id)")
    ]
    assert fake.requests == []


def test_rejected_rows_ride_along_with_the_job() -> None:
    fake = FakeGoogle()
    destination = make(fake)
    batch = Batch(Operation.ADD, [*records(PEOPLE[:1]), Record("empty", {"email": None})])

    results = destination.poll(sent_job(destination, batch))

    assert isinstance(results, list)
    assert [(r.key, r.outcome) for r in results] == [
        ("k0", Outcome.ACCEPTED),
        ("empty", Outcome.REJECTED),
    ]
    assert results[1].reason and results[1].reason.startswith("no usable identifier (email")
    assert json.loads(json.dumps(dict(sent_job(destination, batch).data)))  # storable


def test_concurrent_modification_is_transient() -> None:
    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            409,
            json={
                "error": {
                    "code": 409,
                    "message": "Multiple requests were attempting to modify the same resource.",
                    "status": "ABORTED",
                    "details": [
                        {
                            "@type": FAILURE_TYPE,
                            "errors": [
                                {
                                    "errorCode": {"databaseError": "CONCURRENT_MODIFICATION"},
                                    "message": "Multiple requests were attempting to modify "
                                    "the same resource at once. Retry the request.",
                                }
                            ],
                        }
                    ],
                }
            },
        )

    destination = make(FakeGoogle(**{"offlineUserDataJobs:create": busy}))
    with pytest.raises(TransientDestinationError, match="Retry the request"):
        destination.send(Batch(Operation.ADD, records(PEOPLE)))


def test_a_quota_error_hands_the_rows_back_with_googles_retry_delay() -> None:
    failure = {
        "@type": FAILURE_TYPE,
        "errors": [
            {
                "errorCode": {"quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED"},
                "message": "Too many requests. Retry in 300 seconds.",
                "details": {
                    "quotaErrorDetails": {
                        "rateScope": "DEVELOPER",
                        "rateName": "Requests per developer per day",
                        "retryDelay": "300s",
                    }
                },
            }
        ],
    }
    detail = {k: v for k, v in failure.items() if k != "@type"}
    parse(json.dumps(detail), ads_errors.GoogleAdsFailure.pb())  # Google's own shape

    def exhausted(request: httpx.Request) -> httpx.Response:
        error = {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}
        return httpx.Response(429, json={"error": {**error, "details": [failure]}})

    fake = FakeGoogle(**{"offlineUserDataJobs:create": exhausted})
    destination = make(fake)
    with pytest.raises(TransientDestinationError) as raised:
        destination.send(Batch(Operation.ADD, records(PEOPLE)))

    assert raised.value.retry_after == 300.0
    assert len(fake.ads("offlineUserDataJobs:create")) == 1  # too long to wait in a thread


def test_a_missing_user_list_is_a_permanent_error() -> None:
    def missing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={
                "error": {
                    "code": 400,
                    "status": "INVALID_ARGUMENT",
                    "message": "Request contains an invalid argument.",
                    "details": [
                        {
                            "@type": FAILURE_TYPE,
                            "errors": [
                                {
                                    "errorCode": {
                                        "offlineUserDataJobError": "INVALID_USER_LIST_ID"
                                    },
                                    "message": "The user list ID provided for the job is invalid.",
                                }
                            ],
                        }
                    ],
                }
            },
        )

    destination = make(FakeGoogle(**{"offlineUserDataJobs:create": missing}))
    with pytest.raises(DestinationError) as raised:
        destination.send(Batch(Operation.ADD, records(PEOPLE)))
    assert not isinstance(raised.value, TransientDestinationError)
    assert "user list ID provided for the job is invalid" in raised.value.message


# Settings.


def test_settings_are_checked_and_built_by_create() -> None:
    with pytest.raises(DefinitionError, match="customer_id"):
        create("google_customer_match", settings(customer_id="abc"))
    destination = create(
        "google_customer_match", settings(), transport=httpx.MockTransport(FakeGoogle())
    )
    assert isinstance(destination, GoogleCustomerMatchDestination)
    assert destination.config.customer_id == CUSTOMER


def test_open_refuses_other_modes_and_syncs_without_the_lists_keys() -> None:
    config = GoogleCustomerMatchConfig.model_validate(settings(upload_key_type="crm_id"))
    destination = GoogleCustomerMatchDestination(
        config, transport=httpx.MockTransport(FakeGoogle())
    )
    with pytest.raises(DefinitionError, match="membership"):
        destination.open(Mode.MIRROR, ["external_id"])
    with pytest.raises(DefinitionError, match="external_id"):
        destination.open(Mode.MEMBERSHIP, ["email", "phone"])


def test_check_finds_the_user_list() -> None:
    def found(request: httpx.Request) -> Any:
        return {
            "results": [{"userList": {"resourceName": "customers/1/userLists/987", "name": "VIPs"}}]
        }

    fake = FakeGoogle(**{"googleAds:search": found})
    destination = make(fake)
    result = destination.check()
    assert result.ok and "VIPs" in result.message
    assert (
        "FROM user_list WHERE user_list.resource_name = "
        in fake.bodies("googleAds:search")[0]["query"]
    )

    empty = make(FakeGoogle(**{"googleAds:search": lambda request: {}}))
    assert not empty.check().ok
