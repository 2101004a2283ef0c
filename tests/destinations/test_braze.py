"""Braze destination against a fake of `/users/track`.

Braze publishes no OpenAPI description offline, so the fake asserts the documented shapes
itself, from the pages found with the search tool:
- braze.com/docs/api/endpoints/user_data/post_user_track: `Authorization: Bearer <key>`,
  a JSON body with an `attributes` array of user attributes objects, each with one
  identifier (`external_id`, `email` or `phone`), and at most 75 objects per request;
- braze.com/docs/api/api_limits: 3,000 requests per 3 seconds for /users/track, and the
  `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` headers;
- braze.com/docs/api/errors: a success with minor errors answers
  `{"message": "success", "errors": [...]}`; each error names `input_array` and `index`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
import pytest

from corral.destinations.base import Batch, Mode, Operation, Outcome, Record, RowResult
from corral.destinations.braze import BrazeConfig, BrazeDestination
from corral.errors import DefinitionError, DestinationError, TransientDestinationError
from tests.destinations.openapi_contract import FakeClock

ENDPOINT = "https://rest.iad-01.braze.com"


class FakeBraze:
    def __init__(self) -> None:
        self.users: dict[tuple[str, str], dict[str, Any]] = {}
        self.bodies: list[dict[str, Any]] = []
        self.invalid: set[str] = set()  # identifiers whose object is a minor error

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.host == "rest.iad-01.braze.com"
        if request.headers.get("authorization") != "Bearer braze-key":
            return httpx.Response(401, json={"message": "Invalid API key"})
        assert (request.method, request.url.path) == ("POST", "/users/track")
        assert request.headers["content-type"] == "application/json"
        body = json.loads(request.content)
        self.bodies.append(body)
        objects = body.get("attributes") or []
        if not objects:
            message = (
                "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
            )
            return httpx.Response(400, json={"message": message})
        assert len(objects) <= 75  # attributes, events and purchases together

        errors = []
        for index, attributes in enumerate(objects):
            identity = [
                (k, attributes[k]) for k in ("external_id", "email", "phone") if k in attributes
            ]
            assert len(identity) >= 1
            if identity[0][1] in self.invalid:
                errors.append(
                    {"type": "'dob' is not valid", "input_array": "attributes", "index": index}
                )
                continue
            if attributes.get("_update_existing_only") and identity[0] not in self.users:
                continue
            user = self.users.setdefault(identity[0], {})
            user.update({k: v for k, v in attributes.items() if k != "_update_existing_only"})
        answer: dict[str, Any] = {
            "message": "success",
            "attributes_processed": len(objects) - len(errors),
        }
        if errors:
            answer["errors"] = errors
        return httpx.Response(201, json=answer)


@pytest.fixture
def vendor() -> FakeBraze:
    return FakeBraze()


def destination(vendor: Any, mode: Mode = Mode.UPSERT, **config: Any) -> BrazeDestination:
    clock = FakeClock()
    settings = BrazeConfig.model_validate(
        {"rest_endpoint": ENDPOINT + "/", "api_key": "braze-key", **config}
    )
    braze = BrazeDestination(
        settings, transport=httpx.MockTransport(vendor), sleep=clock.sleep, clock=clock
    )
    braze.open(mode, ["external_id", "email", "first_name", "tier"])
    return braze


def users(count: int, **fields: Any) -> list[Record]:
    return [
        Record(f"k{i}", {"external_id": f"u{i}", "tier": "gold", **fields}) for i in range(count)
    ]


def test_upsert_sends_attribute_objects_in_requests_of_75(vendor: FakeBraze) -> None:
    results = destination(vendor).send(Batch(Operation.ADD, users(80)))

    assert len(results) == 80 and all(r.outcome is Outcome.ACCEPTED for r in results)
    assert [len(b["attributes"]) for b in vendor.bodies] == [75, 5]
    assert vendor.bodies[0]["attributes"][0] == {
        "external_id": "u0",
        "tier": "gold",
        "_update_existing_only": False,
    }


def test_rows_are_identified_by_external_id_then_email(vendor: FakeBraze) -> None:
    batch = Batch(
        Operation.ADD,
        [
            Record("a", {"external_id": None, "email": "ann@x.io", "first_name": "Ann"}),
            Record("b", {"external_id": None, "email": None, "first_name": "Bo"}),
        ],
    )
    results = destination(vendor).send(batch)

    assert results[0].outcome is Outcome.REJECTED and results[0].key == "b"
    assert vendor.users[("email", "ann@x.io")]["first_name"] == "Ann"
    assert "external_id" not in vendor.bodies[0]["attributes"][0]


def test_minor_errors_reject_their_rows(vendor: FakeBraze) -> None:
    vendor.invalid = {"u1"}
    results = destination(vendor).send(Batch(Operation.ADD, users(3)))

    assert results == [
        RowResult.accepted("k0"),
        RowResult.rejected("k1", "'dob' is not valid"),
        RowResult.accepted("k2"),
    ]


def test_update_mode_never_creates_users(vendor: FakeBraze) -> None:
    vendor.users[("external_id", "u0")] = {"tier": "silver"}
    destination(vendor, Mode.UPDATE).send(Batch(Operation.CHANGE, users(2)))

    assert all(o["_update_existing_only"] is True for o in vendor.bodies[0]["attributes"])
    assert vendor.users == {("external_id", "u0"): {"tier": "gold", "external_id": "u0"}}


def test_membership_sets_and_clears_an_attribute_and_never_deletes(vendor: FakeBraze) -> None:
    braze = destination(vendor, Mode.MEMBERSHIP, membership_attribute="in_churn_risk")
    braze.send(Batch(Operation.ADD, users(2)))
    assert vendor.users[("external_id", "u0")]["in_churn_risk"] is True

    results = braze.send(Batch(Operation.REMOVE, users(1)))

    assert results == [RowResult.accepted("k0")]
    assert vendor.bodies[-1]["attributes"] == [
        {"external_id": "u0", "in_churn_risk": False, "_update_existing_only": True}
    ]
    assert vendor.users[("external_id", "u0")]["in_churn_risk"] is False


def test_mirror_removal_nulls_the_delivered_attributes(vendor: FakeBraze) -> None:
    braze = destination(vendor, Mode.MIRROR)
    braze.send(Batch(Operation.ADD, users(1)))
    braze.send(Batch(Operation.REMOVE, users(1)))

    assert vendor.bodies[-1]["attributes"] == [
        {"external_id": "u0", "tier": None, "_update_existing_only": True}
    ]
    assert vendor.users[("external_id", "u0")]["tier"] is None


def test_a_bad_key_is_a_destination_error(vendor: FakeBraze) -> None:
    settings = BrazeConfig.model_validate({"rest_endpoint": ENDPOINT, "api_key": "wrong"})
    braze = BrazeDestination(settings, transport=httpx.MockTransport(vendor))
    braze.open(Mode.UPSERT, ["external_id"])

    with pytest.raises(DestinationError) as raised:
        braze.send(Batch(Operation.ADD, users(1)))
    assert not isinstance(raised.value, TransientDestinationError)
    assert braze.check().ok is False
    assert destination(vendor).check().ok is True  # an empty request is refused as empty


def test_rate_limiting_surfaces_as_a_transient_error() -> None:
    def throttled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3"}, json={"message": "Too many"})

    with pytest.raises(TransientDestinationError) as raised:
        destination(throttled).send(Batch(Operation.ADD, users(1)))
    assert raised.value.retry_after == 3.0


def test_a_429_without_retry_after_waits_until_braze_resets_its_window(
    vendor: FakeBraze,
) -> None:
    answers = [
        httpx.Response(
            429,
            headers={
                "X-RateLimit-Limit": "3000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + 3),
            },
            json={"message": "Too many requests"},
        )
    ]
    clock = FakeClock()
    settings = BrazeConfig.model_validate({"rest_endpoint": ENDPOINT, "api_key": "braze-key"})
    braze = BrazeDestination(
        settings,
        transport=httpx.MockTransport(lambda r: answers.pop(0) if answers else vendor(r)),
        sleep=clock.sleep,
        clock=clock,
    )
    braze.open(Mode.UPSERT, ["external_id", "tier"])

    results = braze.send(Batch(Operation.ADD, users(1)))

    assert [r.outcome for r in results] == [Outcome.ACCEPTED]
    assert len(clock.slept) == 1 and 1.0 < clock.slept[0] <= 3.0


def test_unknown_users_in_update_mode_count_as_delivered_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def skipping(request: httpx.Request) -> httpx.Response:
        # Braze answers success and names no skipped object; here it counts one of two.
        return httpx.Response(201, json={"message": "success", "attributes_processed": 1})

    with caplog.at_level(logging.WARNING, logger="corral.destinations.braze"):
        results = destination(skipping, Mode.UPDATE).send(Batch(Operation.CHANGE, users(2)))

    assert results == [RowResult.accepted("k0"), RowResult.accepted("k1")]
    assert "processed 1 of 2 attribute objects" in caplog.text


def test_a_fatal_error_without_indexes_is_a_destination_error() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": "Invalid request body"})

    with pytest.raises(DestinationError, match="Invalid request body"):
        destination(refused).send(Batch(Operation.ADD, users(1)))


def test_settings() -> None:
    with pytest.raises(ValueError, match="https"):
        BrazeConfig.model_validate({"rest_endpoint": "rest.iad-01.braze.com", "api_key": "k"})
    settings = BrazeConfig.model_validate({"rest_endpoint": ENDPOINT, "api_key": "k"})
    with pytest.raises(DefinitionError):
        BrazeDestination(settings).open(Mode.MEMBERSHIP, ["external_id"])
    assert BrazeDestination.catalog.config_schema()["properties"]["api_key"]["writeOnly"]
    assert BrazeDestination.catalog.rate_limit is not None
    assert BrazeDestination.catalog.rate_limit.requests == 3_000
