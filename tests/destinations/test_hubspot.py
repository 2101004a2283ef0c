"""HubSpot destination against a fake of HubSpot's CRM API.

HubSpot publishes no OpenAPI description offline, so the fake asserts the documented
shapes itself, from the pages found with the search tool:
- batch upsert and update: developers.hubspot.com/docs/api-reference/legacy/crm/objects/
  contacts/batch/upsert-contacts and .../update-contacts (`inputs` of `id`, `idProperty`,
  `properties`, `objectWriteTraceId`; at most 100 inputs per call);
- multi-status errors: developers.hubspot.com/docs/api-reference/error-handling (207 with
  per-input errors whose context names the `objectWriteTraceId`);
- list memberships: developers.hubspot.com/docs/api-reference/legacy/crm/lists/
  memberships/add-to-list (PUT a JSON array of record ids; the answer lists
  `recordIdsMissing`);
- rate limits: developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines
  and the changelog "Increasing our API limits" (100 to 190 requests per 10 s); the same
  guidelines give the 429 body (`errorType` RATE_LIMIT, `policyName`) and the
  `X-HubSpot-RateLimit-*` headers the rate-limit tests answer with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from corral.destinations.base import Batch, Mode, Operation, Outcome, Record, RowResult
from corral.destinations.hubspot import HubSpotConfig, HubSpotDestination
from corral.errors import DefinitionError, DestinationError, TransientDestinationError
from tests.destinations.openapi_contract import FakeClock

LIST_ID = "123"


class FakeHubSpot:
    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}  # by email
        self.members: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.invalid: set[str] = set()  # emails whose input a 207 rejects
        self.poison: set[str] = set()  # emails that make HubSpot refuse the whole call

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != "Bearer pat-na1-test":
            return httpx.Response(401, json={"status": "error", "category": "INVALID_AUTH"})
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        if path.startswith("/crm/v3/objects/contacts/batch/"):
            assert request.method == "POST"
            assert request.headers["content-type"] == "application/json"
            assert 1 <= len(body["inputs"]) <= 100  # HubSpot's batch limit
            action = path.rsplit("/", 1)[1]
            return self.read(body) if action == "read" else self.write(action, body)
        if path.startswith(f"/crm/v3/lists/{LIST_ID}/memberships/"):
            assert request.method == "PUT" and all(isinstance(i, str) for i in body)
            return self.membership(path.rsplit("/", 1)[1], body)
        if path == "/crm/v3/objects/contacts":
            return httpx.Response(200, json={"results": []})
        if path == f"/crm/v3/lists/{LIST_ID}":
            return httpx.Response(200, json={"list": {"listId": LIST_ID, "name": "Churn risk"}})
        return httpx.Response(404, json={"status": "error", "message": "not found"})

    def write(self, action: str, body: dict[str, Any]) -> httpx.Response:
        inputs = body["inputs"]
        if any(i["id"] in self.poison for i in inputs):
            message = "Property values were not valid: lifecyclestage"
            return httpx.Response(400, json={"category": "VALIDATION_ERROR", "message": message})
        results, errors = [], []
        for item in inputs:
            assert item["idProperty"] == "email" and set(item) >= {"id", "properties"}
            email, trace = item["id"], item["objectWriteTraceId"]
            if email in self.invalid:
                errors.append(self.error("VALIDATION_ERROR", "Email is invalid", trace))
            elif action == "update" and email not in self.contacts:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": "Could not get some CONTACT objects, they may be deleted "
                        "or not exist.",
                        "context": {"ids": [email]},
                    }
                )
            else:
                contact = self.contacts.setdefault(email, {"id": str(1000 + len(self.contacts))})
                contact.update(item["properties"])
                results.append({"id": contact["id"], "properties": {"email": email}})
        status = 207 if errors else 200
        return httpx.Response(
            status, json={"status": "COMPLETE", "results": results, "errors": errors}
        )

    def error(self, category: str, message: str, trace: str) -> dict[str, Any]:
        context = {"objectWriteTraceId": [trace]}
        return {"status": "error", "category": category, "message": message, "context": context}

    def read(self, body: dict[str, Any]) -> httpx.Response:
        assert body["idProperty"] == "email"
        found = [i["id"] for i in body["inputs"] if i["id"] in self.contacts]
        results = [{"id": self.contacts[e]["id"], "properties": {"email": e}} for e in found]
        missing = [i["id"] for i in body["inputs"] if i["id"] not in self.contacts]
        errors = [{"status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": missing}}]
        answer = {"status": "COMPLETE", "results": results, "errors": errors if missing else []}
        return httpx.Response(207 if missing else 200, json=answer)

    def membership(self, change: str, ids: list[str]) -> httpx.Response:
        known = {c["id"] for c in self.contacts.values()}
        missing = [i for i in ids if i not in known]
        present = [i for i in ids if i in known]
        if change == "add":
            self.members |= set(present)
        else:
            self.members -= set(present)
        answer = {"recordIdsMissing": missing, "recordIdsRemoved": [], "recordsIdsAdded": []}
        return httpx.Response(200, json=answer)


@pytest.fixture
def vendor() -> FakeHubSpot:
    return FakeHubSpot()


def destination(vendor: FakeHubSpot, mode: Mode = Mode.UPSERT, **config: Any) -> HubSpotDestination:
    clock = FakeClock()
    settings = HubSpotConfig.model_validate({"access_token": "pat-na1-test", **config})
    transport = httpx.MockTransport(vendor)
    hubspot = HubSpotDestination(settings, transport=transport, sleep=clock.sleep, clock=clock)
    hubspot.open(mode, ["email", "firstname", "lifecyclestage"])
    return hubspot


def contacts(*emails: str | None) -> list[Record]:
    return [
        Record(f"k{i}", {"email": e, "firstname": "Ada", "lifecyclestage": None})
        for i, e in enumerate(emails)
    ]


def test_upsert_sends_documented_inputs(vendor: FakeHubSpot) -> None:
    results = destination(vendor).send(Batch(Operation.ADD, contacts("a@x.io", None, "a@x.io")))

    assert {r.key: r.outcome for r in results} == {
        "k0": Outcome.ACCEPTED,
        "k1": Outcome.REJECTED,  # no email
        "k2": Outcome.REJECTED,  # the same email twice in one batch
    }
    (request,) = vendor.requests
    assert request.url.path == "/crm/v3/objects/contacts/batch/upsert"
    assert json.loads(request.content) == {
        "inputs": [
            {
                "idProperty": "email",
                "id": "a@x.io",
                "objectWriteTraceId": "0",
                "properties": {"firstname": "Ada", "lifecyclestage": ""},
            }
        ]
    }


def test_multi_status_errors_reject_only_their_rows(vendor: FakeHubSpot) -> None:
    vendor.invalid = {"b@x.io"}
    results = destination(vendor).send(Batch(Operation.ADD, contacts("a@x.io", "b@x.io")))

    assert results == [
        RowResult.accepted("k0"),
        RowResult.rejected("k1", "VALIDATION_ERROR: Email is invalid"),
    ]


def test_a_refused_batch_is_halved_until_the_bad_row_stands_alone(vendor: FakeHubSpot) -> None:
    vendor.poison = {"c@x.io"}
    emails = ["a@x.io", "b@x.io", "c@x.io", "d@x.io"]

    results = destination(vendor).send(Batch(Operation.ADD, contacts(*emails)))

    assert [r.outcome for r in results].count(Outcome.ACCEPTED) == 3
    (bad,) = [r for r in results if r.outcome is Outcome.REJECTED]
    assert bad.key == "k2" and "Property values were not valid" in (bad.reason or "")
    assert set(vendor.contacts) == {"a@x.io", "b@x.io", "d@x.io"}


def test_update_rejects_contacts_hubspot_lacks(vendor: FakeHubSpot) -> None:
    vendor.contacts["a@x.io"] = {"id": "1"}
    hubspot = destination(vendor, Mode.UPDATE)

    results = hubspot.send(Batch(Operation.CHANGE, contacts("a@x.io", "new@x.io")))

    assert results[0] == RowResult.accepted("k0")
    assert results[1].outcome is Outcome.REJECTED and "OBJECT_NOT_FOUND" in (
        results[1].reason or ""
    )
    assert vendor.requests[0].url.path.endswith("/batch/update")
    assert "new@x.io" not in vendor.contacts


def test_membership_adds_record_ids_and_removes_by_email(vendor: FakeHubSpot) -> None:
    hubspot = destination(vendor, Mode.MEMBERSHIP, list_id=LIST_ID)
    added = hubspot.send(Batch(Operation.ADD, contacts("a@x.io", "b@x.io")))
    assert all(r.outcome is Outcome.ACCEPTED for r in added)
    ids = {vendor.contacts[e]["id"] for e in ("a@x.io", "b@x.io")}
    assert vendor.members == ids
    add = vendor.requests[1]
    assert add.method == "PUT" and add.url.path == f"/crm/v3/lists/{LIST_ID}/memberships/add"
    assert sorted(json.loads(add.content)) == sorted(ids)

    removed = hubspot.send(
        Batch(
            Operation.REMOVE, [Record("k0", {"email": "a@x.io"}), Record("k5", {"email": "z@x.io"})]
        )
    )

    assert [r.outcome for r in removed] == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert vendor.members == {vendor.contacts["b@x.io"]["id"]}
    read, remove = vendor.requests[2:]
    assert read.url.path == "/crm/v3/objects/contacts/batch/read"
    assert json.loads(remove.content) == [vendor.contacts["a@x.io"]["id"]]


def test_a_bad_token_is_a_destination_error(vendor: FakeHubSpot) -> None:
    settings = HubSpotConfig.model_validate({"access_token": "pat-wrong"})
    hubspot = HubSpotDestination(settings, transport=httpx.MockTransport(vendor))
    hubspot.open(Mode.UPSERT, ["email"])

    with pytest.raises(DestinationError) as raised:
        hubspot.send(Batch(Operation.ADD, contacts("a@x.io")))
    assert not isinstance(raised.value, TransientDestinationError)
    assert hubspot.check().ok is False


def throttling(
    vendor: Callable[[httpx.Request], httpx.Response], *answers: httpx.Response
) -> tuple[HubSpotDestination, FakeClock]:
    """A destination whose first calls get `answers`, and the vendor after them."""
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if queue else vendor(request)

    clock = FakeClock()
    settings = HubSpotConfig.model_validate({"access_token": "pat-na1-test"})
    hubspot = HubSpotDestination(
        settings, transport=httpx.MockTransport(handler), sleep=clock.sleep, clock=clock
    )
    hubspot.open(Mode.UPSERT, ["email"])
    return hubspot, clock


# The 429 body and headers of HubSpot's "API usage guidelines" page.
WINDOW = {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "X-HubSpot-RateLimit-Max": "100"}


def rate_limited(policy: str) -> httpx.Response:
    body = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
        "policyName": policy,
    }
    return httpx.Response(429, headers={**WINDOW, "X-HubSpot-RateLimit-Remaining": "0"}, json=body)


def test_a_rolling_limit_429_is_retried_after_hubspots_window(vendor: FakeHubSpot) -> None:
    hubspot, clock = throttling(vendor, rate_limited("TEN_SECONDLY_ROLLING"))

    results = hubspot.send(Batch(Operation.ADD, contacts("a@x.io")))

    assert [r.outcome for r in results] == [Outcome.ACCEPTED]
    assert clock.slept == [10.0]


def test_a_secondly_limit_429_is_retried_after_a_second(vendor: FakeHubSpot) -> None:
    hubspot, clock = throttling(vendor, rate_limited("SECONDLY"))

    hubspot.send(Batch(Operation.ADD, contacts("a@x.io")))

    assert clock.slept == [1.0]


def test_the_daily_limit_hands_the_rows_back_for_an_hour(vendor: FakeHubSpot) -> None:
    hubspot, clock = throttling(vendor, rate_limited("DAILY"))

    with pytest.raises(TransientDestinationError) as raised:
        hubspot.send(Batch(Operation.ADD, contacts("a@x.io")))

    assert raised.value.retry_after == 3_600.0
    assert clock.slept == []
    assert vendor.requests == []  # no retry was sent


def test_a_spent_window_holds_the_next_call(vendor: FakeHubSpot) -> None:
    spent = {**WINDOW, "X-HubSpot-RateLimit-Remaining": "0"}
    answer = {"status": "COMPLETE", "results": [{"id": "1", "objectWriteTraceId": "0"}]}
    hubspot, clock = throttling(vendor, httpx.Response(200, headers=spent, json=answer))

    hubspot.send(Batch(Operation.ADD, contacts("a@x.io")))
    assert clock.slept == []
    hubspot.send(Batch(Operation.ADD, contacts("b@x.io")))
    assert clock.slept == [10.0]


def test_rate_limiting_that_persists_surfaces_as_a_transient_error() -> None:
    hubspot, clock = throttling(lambda request: rate_limited("TEN_SECONDLY_ROLLING"))

    with pytest.raises(TransientDestinationError):
        hubspot.send(Batch(Operation.ADD, contacts("a@x.io")))
    assert clock.slept == [10.0] * 4


def test_the_rate_limiter_keeps_to_100_requests_per_10_seconds(vendor: FakeHubSpot) -> None:
    clock = FakeClock()
    settings = HubSpotConfig.model_validate({"access_token": "pat-na1-test"})
    hubspot = HubSpotDestination(
        settings, transport=httpx.MockTransport(vendor), sleep=clock.sleep, clock=clock
    )
    hubspot.open(Mode.UPSERT, ["email"])
    for i in range(150):
        hubspot.send(Batch(Operation.ADD, contacts(f"p{i}@x.io")))

    assert clock.now >= 5.0  # 50 requests past the burst of 100, at 10 per second


def test_catalog_and_settings() -> None:
    catalog = HubSpotDestination.catalog
    assert catalog.batch_size == 100 and catalog.required_fields == {"email"}
    assert catalog.config_schema()["properties"]["access_token"]["writeOnly"] is True
    settings = HubSpotConfig.model_validate({"access_token": "pat-na1-test"})
    with pytest.raises(DefinitionError):
        HubSpotDestination(settings).open(Mode.MEMBERSHIP, ["email"])
    with pytest.raises(DefinitionError):
        HubSpotDestination(settings).open(Mode.MIRROR, ["email"])
    assert HubSpotDestination(settings).check  # constructing never calls HubSpot
