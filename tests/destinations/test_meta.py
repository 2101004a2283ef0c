"""The Meta custom audiences destination, against Meta's own SDK as the contract.

Meta publishes no machine-readable description of the Marketing API, so the official
SDK (facebook-business) is the oracle: for the same people, the payload our destination
sends must equal the one `CustomAudience.add_users` / `remove_users` would send, after
the SDK's own normalization and hashing. Where Meta's published rules and the SDK part
ways (the SDK hashes MADID in multi-key uploads; Meta's table says not to hash it), we
follow the published rule and the test says so.

Requests are captured with `httpx.MockTransport`; nothing leaves the process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from facebook_business import apiconfig
from facebook_business.adobjects.customaudience import CustomAudience
from facebook_business.session import FacebookSession

from corral.destinations import create
from corral.destinations.base import Batch, Mode, Operation, Outcome, RateLimit, Record
from corral.destinations.identifiers import prepare
from corral.destinations.meta import (
    MAX_ROWS_PER_REQUEST,
    SCHEMA_KEYS,
    MetaCustomAudienceConfig,
    MetaCustomAudienceDestination,
)
from corral.errors import DefinitionError, DestinationError, TransientDestinationError

MultiKey = CustomAudience.Schema.MultiKeySchema
# Our field -> the SDK's constant for the same multi-key column.
SDK_COLUMNS = {
    "email": MultiKey.email,
    "phone": MultiKey.phone,
    "first_name": MultiKey.fn,
    "last_name": MultiKey.ln,
    "city": MultiKey.ct,
    "state": MultiKey.st,
    "zip": MultiKey.zip,
    "country": MultiKey.country,
    "mobile_ad_id": MultiKey.madid,
    "external_id": MultiKey.extern_id,
}

# Raw warehouse values. They are written the way CRMs hold them (mixed case, punctuation,
# ZIP+4) and chosen where Meta's table and the SDK agree, so the SDK is a fair oracle.
PEOPLE: list[dict[str, str]] = [
    {
        "email": " Jane.Doe@Example.COM ",
        "phone": "+1 (650) 555-0123",
        "first_name": "Mary-Jane",
        "last_name": "O'Brien",
        "city": "San Francisco",
        "state": "CA",
        "zip": "94103-1234",
        "country": "US",
        "mobile_ad_id": "AECE52E7-03EE-455A-B3C4-E57283966239",
        "external_id": "Cust-00042",
    },
    {
        "email": "kofi.mensah@example.org",
        "phone": "+44 20 7946 0958",
        "first_name": "Kofi",
        "last_name": "Mensah",
        "city": "London",
        "state": "LND",
        "zip": "n1",
        "country": "gb",
        "mobile_ad_id": "6d92078a-8246-4ba4-ae5b-76104861e7dc",
        "external_id": "cust-00043",
    },
    {
        "email": "ANA@EXAMPLE.NET",
        "phone": "+1 212 736 5000",
        "first_name": "Ana",
        "last_name": "Silva",
        "city": "New York",
        "state": "NY",
        "zip": "10001",
        "country": "US",
        "mobile_ad_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
        "external_id": "cust-00044",
    },
]


class FakeGraph:
    """A Graph API stand-in: records every request and answers from `routes`."""

    def __init__(self, routes: Mapping[tuple[str, str], Callable[[httpx.Request], Any]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.split("/", 2)[2]  # drop the version
        answer = self.routes[(request.method, path)](request)
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    def bodies(self, method: str, path: str) -> list[dict[str, Any]]:
        return [
            json.loads(r.content)
            for r in self.requests
            if r.method == method and r.url.path.endswith(path)
        ]


def received(request: httpx.Request) -> dict[str, Any]:
    rows = json.loads(request.content)["payload"]["data"]
    return {"audience_id": "6001", "session_id": "1", "num_received": len(rows)}


def make(
    graph: FakeGraph, **settings: Any
) -> tuple[MetaCustomAudienceDestination, MetaCustomAudienceConfig]:
    config = MetaCustomAudienceConfig.model_validate(
        {"access_token": "EAAB-token", "ad_account_id": "1234", "audience_id": "6001", **settings}
    )
    return MetaCustomAudienceDestination(config, transport=httpx.MockTransport(graph)), config


def prepared(person: Mapping[str, object]) -> dict[str, str | None]:
    """What the sync engine hands the destination: each identifier prepared per the catalog."""
    identifiers = MetaCustomAudienceDestination.catalog.identifiers
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


class RecordingApi:
    """Stands in for FacebookAdsApi so the SDK's add_users/remove_users show their call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...], dict[str, Any]]] = []

    def call(self, method: str, path: tuple[str, ...], params: dict[str, Any]) -> None:
        self.calls.append((method, path, params))


def sdk_call(
    operation: Operation, fields: Sequence[str], people: Sequence[Mapping[str, str]]
) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    api = RecordingApi()
    audience = CustomAudience(fbid="6001", api=api)
    upload = audience.remove_users if operation is Operation.REMOVE else audience.add_users
    upload(
        [SDK_COLUMNS[field] for field in fields],
        [[person[field] for field in fields] for person in people],
        is_raw=True,
    )
    return api.calls[0]


# The contract: the SDK's payload.

HASHED_FIELDS = [field for field in SCHEMA_KEYS if field != "mobile_ad_id"]


@pytest.mark.parametrize("operation", [Operation.ADD, Operation.CHANGE, Operation.REMOVE])
def test_payload_equals_what_the_sdk_builds(operation: Operation) -> None:
    graph = FakeGraph({("POST", "6001/users"): received, ("DELETE", "6001/users"): received})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, list(SCHEMA_KEYS))

    results = destination.send(Batch(operation, records(PEOPLE)))

    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * len(PEOPLE)
    (request,) = graph.requests
    ours = json.loads(request.content)["payload"]
    method, path, params = sdk_call(operation, HASHED_FIELDS, PEOPLE)
    sdk = params["payload"]
    assert (request.method, request.url.path) == (method, f"/v26.0/{'/'.join(path)}")
    assert ours["is_raw"] is sdk["is_raw"] is True
    assert ours["schema"] == [SDK_COLUMNS[field] for field in SCHEMA_KEYS]

    # Every column but MADID is byte for byte the SDK's normalized, hashed value.
    columns = [list(SCHEMA_KEYS).index(field) for field in HASHED_FIELDS]
    assert [[row[i] for i in columns] for row in ours["data"]] == sdk["data"]
    assert [ours["schema"][i] for i in columns] == sdk["schema"]


def test_madid_is_the_sdks_normalized_value_left_unhashed() -> None:
    """Meta's customer-file table: "MADID: do not hash". The SDK's multi-key path hashes
    every column but EXTERN_ID, so here the SDK supplies only the normalization."""
    graph = FakeGraph({("POST", "6001/users"): received})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["mobile_ad_id"])

    destination.send(Batch(Operation.ADD, records(PEOPLE)))

    ours = json.loads(graph.requests[0].content)["payload"]
    assert ours["schema"] == [MultiKey.madid]
    expected = [
        CustomAudience.normalize_key(MultiKey.madid, person["mobile_ad_id"].strip().lower())
        for person in PEOPLE
    ]
    assert [row[0] for row in ours["data"]] == expected


def test_extern_id_is_sent_unhashed_as_the_sdk_does() -> None:
    graph = FakeGraph({("POST", "6001/users"): received})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["external_id", "email"])

    destination.send(Batch(Operation.ADD, records(PEOPLE)))

    ours = json.loads(graph.requests[0].content)["payload"]
    sdk = sdk_call(Operation.ADD, ["email", "external_id"], PEOPLE)[2]["payload"]
    assert ours["schema"] == sdk["schema"] == [MultiKey.email, MultiKey.extern_id]
    assert ours["data"] == sdk["data"]
    assert ours["data"][0][1] == "cust-00042"


def test_schema_constants_are_the_sdks() -> None:
    assert SCHEMA_KEYS == SDK_COLUMNS


def test_default_api_version_is_the_sdks() -> None:
    assert (
        MetaCustomAudienceConfig.model_fields["api_version"].default
        == (apiconfig.ads_api_config["API_VERSION"])
    )


def test_appsecret_proof_equals_the_sdks_and_the_token_is_a_header() -> None:
    graph = FakeGraph({("POST", "6001/users"): received})
    destination, _ = make(graph, app_secret="s3cret")
    destination.open(Mode.MEMBERSHIP, ["email"])

    destination.send(Batch(Operation.ADD, records(PEOPLE[:1])))

    request = graph.requests[0]
    session = FacebookSession(app_secret="s3cret", access_token="EAAB-token")
    query = parse_qs(urlsplit(str(request.url)).query)
    assert query["appsecret_proof"] == [session.appsecret_proof]
    assert request.headers["Authorization"] == "Bearer EAAB-token"
    assert b"EAAB-token" not in request.content


def test_no_appsecret_proof_without_an_app_secret() -> None:
    graph = FakeGraph({("POST", "6001/users"): received})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["email"])
    destination.send(Batch(Operation.ADD, records(PEOPLE[:1])))
    assert "appsecret_proof" not in str(graph.requests[0].url)


# Catalog and documented limits.


def test_catalog_keeps_to_metas_documented_limits() -> None:
    catalog = MetaCustomAudienceDestination.catalog
    assert catalog.name == "meta_custom_audiences"
    assert catalog.modes == frozenset({Mode.MEMBERSHIP})
    # "only a maximum of 10000 at a time" (Custom Audience Users reference)
    assert catalog.batch_size <= MAX_ROWS_PER_REQUEST == 10_000
    # The custom audience business-use-case quota with limited access: 5,000 calls an hour.
    assert catalog.rate_limit == RateLimit(requests=5_000, per_seconds=3_600)
    assert not catalog.asynchronous
    assert set(catalog.identifiers) == set(SCHEMA_KEYS)
    unhashed = {f for f, identifier in catalog.identifiers.items() if not identifier.hashed}
    assert unhashed == {"mobile_ad_id", "external_id"}
    assert {identifier.rules for identifier in catalog.identifiers.values()} == {"meta"}
    assert catalog.config_schema()["properties"]["access_token"]["writeOnly"] is True
    assert catalog.config_schema()["properties"]["app_secret"]


def test_more_rows_than_one_request_takes_are_split() -> None:
    graph = FakeGraph({("POST", "6001/users"): received})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["email"])
    digest = "a" * 64
    many = [Record(f"k{i}", {"email": digest}) for i in range(MAX_ROWS_PER_REQUEST + 1)]

    results = destination.send(Batch(Operation.ADD, many))

    sizes = [len(body["payload"]["data"]) for body in graph.bodies("POST", "/users")]
    assert sizes == [MAX_ROWS_PER_REQUEST, 1]
    assert len(results) == MAX_ROWS_PER_REQUEST + 1


def test_each_request_is_its_own_complete_session() -> None:
    graph = FakeGraph({("POST", "6001/users"): received})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["email"])
    destination.send(Batch(Operation.ADD, records(PEOPLE)))
    destination.send(Batch(Operation.ADD, records(PEOPLE[:1])))

    first, second = (body["session"] for body in graph.bodies("POST", "/users"))
    assert first["batch_seq"] == second["batch_seq"] == 1
    assert first["last_batch_flag"] is second["last_batch_flag"] is True
    assert (first["estimated_num_total"], second["estimated_num_total"]) == (3, 1)
    assert first["session_id"] != second["session_id"]
    assert 0 < first["session_id"] < 2**63


# Rows and answers.


def test_missing_values_are_empty_and_rows_without_any_identifier_are_rejected() -> None:
    graph = FakeGraph({("POST", "6001/users"): received})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["email", "phone"])
    batch = Batch(
        Operation.ADD,
        records(
            [
                {"email": "a@example.com"},
                {"phone": None, "email": None},
                {"phone": "+1 650 555 0123"},
            ]
        ),
    )

    results = destination.send(batch)

    outcomes = {r.key: (r.outcome, r.reason) for r in results}
    assert outcomes["k0"] == (Outcome.ACCEPTED, None)
    assert outcomes["k2"] == (Outcome.ACCEPTED, None)
    assert outcomes["k1"][0] is Outcome.REJECTED
    assert outcomes["k1"][1] and outcomes["k1"][1].startswith("no usable identifier (email, phone")
    data = graph.bodies("POST", "/users")[0]["payload"]["data"]
    assert data == [
        [prepare("email", "a@example.com", "meta"), ""],
        ["", prepare("phone", "+1 650 555 0123", "meta")],
    ]


def test_a_batch_of_only_unusable_rows_sends_nothing() -> None:
    graph = FakeGraph({})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["email"])
    results = destination.send(Batch(Operation.ADD, [Record("k", {"email": None})]))
    assert [r.outcome for r in results] == [Outcome.REJECTED]
    assert graph.requests == []


def test_invalid_entry_samples_reject_the_rows_that_hold_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = prepare("email", "kofi.mensah@example.org", "meta")
    answer = {
        "audience_id": "6001",
        "session_id": "9",
        "num_received": 3,
        "num_invalid_entries": 2,
        "invalid_entry_samples": {bad: "Invalid email format"},
    }
    graph = FakeGraph({("POST", "6001/users"): lambda request: answer})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["email"])

    results = destination.send(Batch(Operation.ADD, records(PEOPLE)))

    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.REJECTED, Outcome.ACCEPTED]
    assert results[1].reason == "Meta found an invalid entry (EMAIL: Invalid email format)"
    assert "reported 2 invalid entries" in caplog.text


def graph_error(code: int, status: int = 400, **extra: Any) -> Callable[[httpx.Request], Any]:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            json={"error": {"message": "nope", "type": "OAuthException", "code": code, **extra}},
            headers={
                "X-Business-Use-Case-Usage": json.dumps(
                    {
                        "1234": [
                            {
                                "type": "custom_audience",
                                "call_count": 100,
                                "estimated_time_to_regain_access": 7,
                            }
                        ]
                    }
                )
            },
        )

    return answer


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80003, 80004])
def test_throttling_codes_raise_transient_with_the_wait_meta_names(code: int) -> None:
    graph = FakeGraph({("POST", "6001/users"): graph_error(code)})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["email"])

    with pytest.raises(TransientDestinationError) as raised:
        destination.send(Batch(Operation.ADD, records(PEOPLE)))
    assert raised.value.retry_after == 7 * 60
    assert f"(code {code})" in raised.value.message


def test_a_throttle_holds_back_the_next_batch_without_sending_it() -> None:
    graph = FakeGraph({("POST", "6001/users"): graph_error(80003)})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["email"])
    with pytest.raises(TransientDestinationError):
        destination.send(Batch(Operation.ADD, records(PEOPLE)))

    with pytest.raises(TransientDestinationError, match="was not sent") as raised:
        destination.send(Batch(Operation.ADD, records(PEOPLE)))
    assert len(graph.requests) == 1
    assert raised.value.retry_after == pytest.approx(7 * 60, abs=5)


def test_the_ad_account_usage_header_names_the_wait_when_the_buc_header_does_not() -> None:
    def throttled(request: httpx.Request) -> httpx.Response:
        usage = {"acc_id_util_pct": 100, "reset_time_duration": 120, "ads_api_access_tier": "x"}
        return httpx.Response(
            400,
            json={"error": {"message": "User request limit reached", "code": 17}},
            headers={"X-Ad-Account-Usage": json.dumps(usage)},
        )

    destination, _ = make(FakeGraph({("POST", "6001/users"): throttled}))
    destination.open(Mode.MEMBERSHIP, ["email"])

    with pytest.raises(TransientDestinationError) as raised:
        destination.send(Batch(Operation.ADD, records(PEOPLE)))
    assert raised.value.retry_after == 120


def test_a_flagged_audience_stops_the_run_with_what_to_do() -> None:
    graph = FakeGraph({("POST", "6001/users"): graph_error(100, error_subcode=1713230)})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["email"])

    with pytest.raises(DestinationError) as raised:
        destination.send(Batch(Operation.ADD, records(PEOPLE)))
    assert not isinstance(raised.value, TransientDestinationError)
    assert raised.value.hint and "Audience Manager" in raised.value.hint


def test_an_expired_token_is_a_permanent_error_that_says_what_to_do() -> None:
    graph = FakeGraph({("POST", "6001/users"): graph_error(190, error_subcode=463)})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["email"])

    with pytest.raises(DestinationError) as raised:
        destination.send(Batch(Operation.ADD, records(PEOPLE)))
    assert not isinstance(raised.value, TransientDestinationError)
    assert raised.value.hint and "access_token" in raised.value.hint


def test_other_refusals_reject_the_rows_with_metas_message() -> None:
    graph = FakeGraph({("POST", "6001/users"): graph_error(100)})
    destination, _ = make(graph)
    destination.open(Mode.MEMBERSHIP, ["email"])

    results = destination.send(Batch(Operation.ADD, records(PEOPLE)))

    assert {r.outcome for r in results} == {Outcome.REJECTED}
    assert results[0].reason == "Meta refused the batch: nope"


# Audiences and settings.


def test_an_audience_name_finds_the_existing_audience() -> None:
    pages = {
        None: {
            "data": [{"id": "1", "name": "Other"}],
            "paging": {"cursors": {"after": "c1"}, "next": "https://graph..."},
        },
        "c1": {"data": [{"id": "6002", "name": "VIPs"}], "paging": {"cursors": {"after": "c2"}}},
    }

    def listing(request: httpx.Request) -> Any:
        return pages[request.url.params.get("after")]

    graph = FakeGraph(
        {("GET", "act_1234/customaudiences"): listing, ("POST", "6002/users"): received}
    )
    destination, _ = make(graph, audience_id=None, audience_name="VIPs")

    destination.open(Mode.MEMBERSHIP, ["email"])
    destination.send(Batch(Operation.ADD, records(PEOPLE[:1])))

    assert destination.audience_id == "6002"
    assert [r.method for r in graph.requests] == ["GET", "GET", "POST"]


def test_an_audience_name_creates_a_customer_list_audience_when_none_matches() -> None:
    graph = FakeGraph(
        {
            ("GET", "act_1234/customaudiences"): lambda request: {"data": []},
            ("POST", "act_1234/customaudiences"): lambda request: {"id": "7007"},
        }
    )
    destination, _ = make(
        graph,
        audience_id=None,
        audience_name="Lapsed buyers",
        ad_account_id="act_1234",
        audience_description="from Corral",
    )

    destination.open(Mode.MEMBERSHIP, ["email"])

    assert destination.audience_id == "7007"
    (body,) = graph.bodies("POST", "/customaudiences")
    assert body == {
        "name": "Lapsed buyers",
        "subtype": CustomAudience.Subtype.custom,
        "customer_file_source": CustomAudience.CustomerFileSource.user_provided_only,
        "description": "from Corral",
    }


def test_settings_need_an_audience_and_are_built_by_create() -> None:
    with pytest.raises(DefinitionError, match="audience_id"):
        create("meta_custom_audiences", {"access_token": "t", "ad_account_id": "1"})
    destination = create(
        "meta_custom_audiences",
        {"access_token": "t", "ad_account_id": "1", "audience_id": "2"},
        transport=httpx.MockTransport(lambda request: httpx.Response(500)),
    )
    assert isinstance(destination, MetaCustomAudienceDestination)


def test_open_refuses_other_modes_and_syncs_without_identifiers() -> None:
    destination, _ = make(FakeGraph({}))
    with pytest.raises(DefinitionError, match="membership"):
        destination.open(Mode.UPSERT, ["email"])
    with pytest.raises(DefinitionError, match="map at least one of"):
        destination.open(Mode.MEMBERSHIP, ["loyalty_tier"])


def test_check_reads_the_audience() -> None:
    graph = FakeGraph({("GET", "6001"): lambda request: {"id": "6001", "name": "VIPs"}})
    destination, _ = make(graph)
    assert destination.check().ok
    assert "VIPs" in destination.check().message

    refused = FakeGraph({("GET", "6001"): graph_error(190, status=401)})
    destination, _ = make(refused)
    assert not destination.check().ok
