"""Klaviyo destination: requests and faked answers are checked against Klaviyo's OpenAPI
descriptions (../shared/specs/klaviyo-*.json, one operation per file, revision 2026-07-15).

Three operations the destination uses have no description offline: Get Bulk Import
Profiles Job, Get Errors for Bulk Import Profiles Job and Get Profiles. Their requests are
checked against developers.klaviyo.com/en/reference/get_bulk_import_profiles_job,
.../get_errors_for_bulk_import_profiles_job and .../get_profiles (found with the search
tool): the revision header, the `any(...)` filter, page sizes of at most 100.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from corral.destinations.base import Batch, Job, Mode, Operation, Outcome, Record, RowResult
from corral.destinations.klaviyo import KlaviyoConfig, KlaviyoDestination
from corral.errors import DefinitionError, DestinationError, TransientDestinationError
from tests.destinations.openapi_contract import SPECS, ContractTransport, FakeClock

DESCRIPTIONS = [
    "klaviyo-bulk_import_profiles.json",
    "klaviyo-add_profiles_to_list.json",
    "klaviyo-remove_profiles_from_list.json",
    "klaviyo-get_lists.json",
]
UNDESCRIBED = [
    ("GET", r"/api/profile-bulk-import-jobs/[^/]+"),
    ("GET", r"/api/profile-bulk-import-jobs/[^/]+/import-errors"),
    ("GET", r"/api/profiles"),
]
LIST_ID = "VRgFBd"
JSON_API = {"Content-Type": "application/vnd.api+json"}


class FakeKlaviyo:
    """Profiles, one list and bulk import jobs, answering in Klaviyo's JSON:API shapes."""

    def __init__(self) -> None:
        self.profiles: dict[str, dict[str, Any]] = {}  # by id
        self.members: set[str] = set()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.polls_until_done = 1
        self.invalid: set[str] = set()  # emails an import request is refused for (HTTP 400)
        self.failing: set[str] = set()  # emails an import job fails
        self.error_page_size = 1  # small, to make the destination follow links.next

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if request.headers.get("authorization") != "Klaviyo-API-Key pk_test":
            return self.error(401, "not_authenticated", "Incorrect authentication credentials.")
        assert request.headers["revision"] == "2026-07-15"
        if (method, path) == ("POST", "/api/profile-bulk-import-jobs"):
            return self.start(json.loads(request.content))
        if method == "GET" and path.endswith("/import-errors"):
            return self.import_errors(path.split("/")[3], request.url.params)
        if method == "GET" and path.startswith("/api/profile-bulk-import-jobs/"):
            return self.job(path.rsplit("/", 1)[1])
        if (method, path) == ("GET", "/api/profiles"):
            return self.find(request.url.params)
        if path == f"/api/lists/{LIST_ID}/relationships/profiles" and method == "DELETE":
            self.members -= {p["id"] for p in json.loads(request.content)["data"]}
            return httpx.Response(204)
        if (method, path) == ("GET", "/api/lists"):
            link = f"https://a.klaviyo.com/api/lists/{LIST_ID}"
            data = [
                {
                    "type": "list",
                    "id": LIST_ID,
                    "attributes": {"name": "Newsletter"},
                    "links": {"self": link},
                }
            ]
            links = {"self": "https://a.klaviyo.com/api/lists"}
            return httpx.Response(200, json={"data": data, "links": links}, headers=JSON_API)
        return self.error(404, "not_found", "Not found.")

    def error(self, status: int, code: str, detail: str, pointer: str | None = None) -> Any:
        error: dict[str, Any] = {"id": "e1", "code": code, "title": code, "detail": detail}
        if pointer:
            error["source"] = {"pointer": pointer}
        return httpx.Response(status, json={"errors": [error]}, headers=JSON_API)

    def start(self, body: dict[str, Any]) -> httpx.Response:
        profiles = body["data"]["attributes"]["profiles"]["data"]
        for i, profile in enumerate(profiles):
            if profile["attributes"].get("email") in self.invalid:
                pointer = f"/data/attributes/profiles/data/{i}/attributes/email"
                return self.error(400, "invalid", "Invalid email address", pointer)
        job_id = f"job{len(self.jobs)}"
        self.jobs[job_id] = {"body": body, "polls": 0}
        return httpx.Response(202, json=self.job_document(job_id, "queued"), headers=JSON_API)

    def job_document(self, job_id: str, status: str, failed: int = 0) -> dict[str, Any]:
        total = len(self.jobs[job_id]["body"]["data"]["attributes"]["profiles"]["data"])
        link = f"https://a.klaviyo.com/api/profile-bulk-import-jobs/{job_id}"
        return {
            "data": {
                "type": "profile-bulk-import-job",
                "id": job_id,
                "attributes": {
                    "status": status,
                    "created_at": "2026-07-20T10:00:00+00:00",
                    "total_count": total,
                    "completed_count": total - failed if status == "complete" else 0,
                    "failed_count": failed,
                },
                "links": {"self": link},
            },
            "links": {"self": link},
        }

    def job(self, job_id: str) -> httpx.Response:
        job = self.jobs[job_id]
        job["polls"] += 1
        if job["polls"] <= self.polls_until_done:
            return httpx.Response(200, json=self.job_document(job_id, "processing"))
        body = job["body"]["data"]
        failed = 0
        for profile in body["attributes"]["profiles"]["data"]:
            attributes = profile["attributes"]
            if attributes.get("email") in self.failing:
                failed += 1
                continue
            profile_id = f"01P{attributes.get('email') or attributes.get('external_id')}"
            self.profiles.setdefault(profile_id, {}).update(attributes)
            if body.get("relationships", {}).get("lists"):
                self.members.add(profile_id)
        return httpx.Response(200, json=self.job_document(job_id, "complete", failed))

    def import_errors(self, job_id: str, params: httpx.QueryParams) -> httpx.Response:
        profiles = self.jobs[job_id]["body"]["data"]["attributes"]["profiles"]["data"]
        errors = [
            {
                "type": "import-error",
                "id": f"err{i}",
                "attributes": {
                    "code": "invalid",
                    "title": "Invalid input.",
                    "detail": "The email domain does not accept mail.",
                    "source": {"pointer": f"/data/attributes/profiles/data/{i}/attributes/email"},
                },
            }
            for i, p in enumerate(profiles)
            if p["attributes"].get("email") in self.failing
        ]
        start = int(params.get("page[cursor]", "0"))
        page = errors[start : start + self.error_page_size]
        links: dict[str, Any] = {}
        if start + self.error_page_size < len(errors):
            base = f"https://a.klaviyo.com/api/profile-bulk-import-jobs/{job_id}/import-errors"
            links["next"] = f"{base}?page%5Bcursor%5D={start + self.error_page_size}"
        return httpx.Response(200, json={"data": page, "links": links})

    def find(self, params: httpx.QueryParams) -> httpx.Response:
        kind, _, values = params["filter"].removeprefix("any(").removesuffix(")").partition(",")
        wanted = set(json.loads(values))
        assert len(wanted) <= 100 and int(params["page[size]"]) <= 100
        data = [
            {"type": "profile", "id": profile_id, "attributes": {kind: p.get(kind)}}
            for profile_id, p in self.profiles.items()
            if p.get(kind) in wanted
        ]
        return httpx.Response(200, json={"data": data, "links": {}})


@pytest.fixture
def vendor() -> FakeKlaviyo:
    return FakeKlaviyo()


@pytest.fixture
def transport(vendor: FakeKlaviyo) -> ContractTransport:
    return ContractTransport(DESCRIPTIONS, vendor, undescribed=UNDESCRIBED)


def destination(
    transport: httpx.BaseTransport, mode: Mode = Mode.UPSERT, **config: Any
) -> KlaviyoDestination:
    clock = FakeClock()
    settings = KlaviyoConfig.model_validate({"api_key": "pk_test", **config})
    klaviyo = KlaviyoDestination(settings, transport=transport, sleep=clock.sleep, clock=clock)
    klaviyo.open(mode, ["email", "external_id", "first_name", "city", "plan"])
    return klaviyo


def run(klaviyo: KlaviyoDestination, batch: Batch) -> list[RowResult]:
    answer = klaviyo.send(batch)
    for _ in range(10):
        if not isinstance(answer, Job):
            return answer
        answer = klaviyo.poll(answer)
    raise AssertionError("the job never finished")


def people(*emails: str | None) -> list[Record]:
    return [
        Record(f"k{i}", {"email": e, "first_name": "Ada", "city": "Oslo", "plan": "gold"})
        for i, e in enumerate(emails)
    ]


def test_upsert_runs_a_bulk_import_job_to_completion(
    transport: ContractTransport, vendor: FakeKlaviyo
) -> None:
    klaviyo = destination(transport)

    job = klaviyo.send(Batch(Operation.ADD, people("ada@example.com", None)))
    assert isinstance(job, Job) and job.keys == ["k0", "k1"]
    running = klaviyo.poll(job)
    assert isinstance(running, Job)  # the fake answers "processing" once
    results = klaviyo.poll(running)

    assert isinstance(results, list)
    assert [(r.key, r.outcome) for r in results] == [
        ("k1", Outcome.REJECTED),
        ("k0", Outcome.ACCEPTED),
    ]
    assert vendor.profiles["01Pada@example.com"]["first_name"] == "Ada"
    first = transport.sent("POST", "/api/profile-bulk-import-jobs")[0]
    assert first.request.headers["content-type"] == "application/vnd.api+json"
    assert first.body["data"]["attributes"]["profiles"]["data"] == [
        {
            "type": "profile",
            "attributes": {
                "email": "ada@example.com",
                "first_name": "Ada",
                "location": {"city": "Oslo"},
                "properties": {"plan": "gold"},
            },
        }
    ]
    assert "relationships" not in first.body["data"]
    polls = transport.sent("GET", r"/api/profile-bulk-import-jobs/[^/]+")
    assert polls and all(e.description is None for e in polls)


def test_a_completed_job_rejects_the_profiles_its_import_errors_point_at(
    transport: ContractTransport, vendor: FakeKlaviyo
) -> None:
    vendor.failing = {"b@example.com"}
    klaviyo = destination(transport)

    results = run(
        klaviyo, Batch(Operation.ADD, people("a@example.com", "b@example.com", "c@x.io", "d@x"))
    )

    by_key = {r.key: r for r in results}
    assert by_key["k1"].outcome is Outcome.REJECTED
    assert by_key["k1"].reason == "Invalid input.: The email domain does not accept mail."
    assert by_key["k0"].outcome is by_key["k2"].outcome is by_key["k3"].outcome
    assert by_key["k0"].outcome is Outcome.ACCEPTED
    pages = transport.sent("GET", r"/api/profile-bulk-import-jobs/[^/]+/import-errors")
    assert len(pages) == 1  # one failure, one page


def test_import_errors_are_read_across_pages(
    transport: ContractTransport, vendor: FakeKlaviyo
) -> None:
    vendor.failing = {"b@example.com", "c@example.com"}
    results = run(
        destination(transport),
        Batch(Operation.ADD, people("a@example.com", "b@example.com", "c@example.com")),
    )

    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.REJECTED, Outcome.REJECTED]
    pages = transport.sent("GET", r"/api/profile-bulk-import-jobs/[^/]+/import-errors")
    assert len(pages) == 2
    assert pages[1].request.url.params["page[cursor]"] == "1"


def test_a_refused_import_rejects_the_pointed_profile_and_resends_the_rest(
    transport: ContractTransport, vendor: FakeKlaviyo
) -> None:
    vendor.invalid = {"not-an-email"}
    results = run(destination(transport), Batch(Operation.ADD, people("a@x.io", "not-an-email")))

    assert results[0] == RowResult.rejected("k1", "invalid: Invalid email address")
    assert results[1] == RowResult.accepted("k0")
    first, second = transport.sent("POST", "/api/profile-bulk-import-jobs")
    assert first.response.status_code == 400
    assert len(second.body["data"]["attributes"]["profiles"]["data"]) == 1


def test_membership_imports_into_the_list_and_removes_by_profile_id(
    transport: ContractTransport, vendor: FakeKlaviyo
) -> None:
    klaviyo = destination(transport, Mode.MEMBERSHIP, list_id=LIST_ID)
    run(klaviyo, Batch(Operation.ADD, people("a@example.com", "b@example.com")))
    imported = transport.sent("POST", "/api/profile-bulk-import-jobs")[0].body
    assert imported["data"]["relationships"] == {
        "lists": {"data": [{"type": "list", "id": LIST_ID}]}
    }
    assert vendor.members == {"01Pa@example.com", "01Pb@example.com"}

    removal = [
        Record("k0", {"email": "a@example.com"}),
        Record("k7", {"email": "never@example.com"}),
        Record("k8", {"email": None}),
    ]
    results = run(klaviyo, Batch(Operation.REMOVE, removal))

    assert {r.key: r.outcome for r in results} == {
        "k0": Outcome.ACCEPTED,
        "k7": Outcome.ACCEPTED,  # never on the list
        "k8": Outcome.REJECTED,  # no identifier to find the profile by
    }
    assert vendor.members == {"01Pb@example.com"}
    (lookup,) = transport.sent("GET", "/api/profiles")
    assert lookup.request.url.params["filter"] == (
        'any(email,["a@example.com","never@example.com"])'
    )
    (delete,) = transport.sent("DELETE", f"/api/lists/{LIST_ID}/relationships/profiles")
    assert delete.description == "klaviyo-remove_profiles_from_list.json"
    assert delete.body == {"data": [{"type": "profile", "id": "01Pa@example.com"}]}


def test_imports_are_split_at_five_megabytes(transport: ContractTransport) -> None:
    records = [
        Record(f"k{i}", {"email": f"p{i}@example.com", "plan": "x" * 90_000}) for i in range(60)
    ]  # 5.4 MB
    results = run(destination(transport), Batch(Operation.ADD, records))

    assert len(results) == 60 and all(r.outcome is Outcome.ACCEPTED for r in results)
    imports = transport.sent("POST", "/api/profile-bulk-import-jobs")
    assert len(imports) == 2 and all(len(e.request.content) <= 5_000_000 for e in imports)


def test_a_profile_over_100_kb_is_rejected_before_sending(transport: ContractTransport) -> None:
    huge = Record("k0", {"email": "big@example.com", "plan": "x" * 120_000})
    results = destination(transport).send(Batch(Operation.ADD, [huge]))

    assert isinstance(results, list) and results[0].outcome is Outcome.REJECTED
    assert "100 KB" in (results[0].reason or "")
    assert transport.exchanges == []


def test_a_bad_key_is_a_destination_error(vendor: FakeKlaviyo) -> None:
    transport = ContractTransport(DESCRIPTIONS, vendor, undescribed=UNDESCRIBED)
    settings = KlaviyoConfig.model_validate({"api_key": "pk_wrong"})
    klaviyo = KlaviyoDestination(settings, transport=transport)
    klaviyo.open(Mode.UPSERT, ["email"])

    with pytest.raises(DestinationError) as raised:
        klaviyo.send(Batch(Operation.ADD, people("a@example.com")))
    assert not isinstance(raised.value, TransientDestinationError)
    assert klaviyo.check().ok is False


def test_rate_limiting_surfaces_as_a_transient_error() -> None:
    # Klaviyo's descriptions answer 4XX with an error document; 429 is one of those.
    def throttled(request: httpx.Request) -> httpx.Response:
        error = {"id": "r", "code": "throttled", "title": "Throttled", "detail": "slow down"}
        headers = {"Retry-After": "90", **JSON_API}
        return httpx.Response(429, headers=headers, json={"errors": [error]})

    transport = ContractTransport(DESCRIPTIONS, throttled, undescribed=UNDESCRIBED)
    clock = FakeClock()
    settings = KlaviyoConfig.model_validate({"api_key": "pk_test"})
    klaviyo = KlaviyoDestination(settings, transport=transport, sleep=clock.sleep, clock=clock)
    klaviyo.open(Mode.UPSERT, ["email"])

    with pytest.raises(TransientDestinationError) as raised:
        klaviyo.send(Batch(Operation.ADD, people("a@example.com")))
    assert raised.value.retry_after == 90.0


def test_a_spent_steady_window_holds_the_next_request(vendor: FakeKlaviyo) -> None:
    # "Rate limits, status codes, and errors": answers other than 429 carry RateLimit-*.
    spent = {"RateLimit-Limit": "150", "RateLimit-Remaining": "0", "RateLimit-Reset": "37"}
    first = [True]

    def answer(request: httpx.Request) -> httpx.Response:
        response = vendor(request)
        if first:
            first.clear()
            response.headers.update(spent)
        return response

    transport = ContractTransport(DESCRIPTIONS, answer, undescribed=UNDESCRIBED)
    clock = FakeClock()
    settings = KlaviyoConfig.model_validate({"api_key": "pk_test"})
    klaviyo = KlaviyoDestination(settings, transport=transport, sleep=clock.sleep, clock=clock)
    klaviyo.open(Mode.UPSERT, ["email"])

    job = klaviyo.send(Batch(Operation.ADD, people("a@example.com")))
    assert isinstance(job, Job) and clock.slept == []
    klaviyo.poll(job)
    assert clock.slept == [37.0]


def test_every_request_names_the_specs_revision(transport: ContractTransport) -> None:
    run(destination(transport), Batch(Operation.ADD, people("a@example.com")))

    revision = json.loads(
        (SPECS / "klaviyo-bulk_import_profiles.json").read_text(encoding="utf-8")
    )["paths"]["/api/profile-bulk-import-jobs"]["post"]["parameters"]
    (default,) = [p["schema"]["default"] for p in revision if p.get("name") == "revision"]
    assert transport.exchanges and all(
        e.request.headers["revision"] == default for e in transport.exchanges
    )


def test_check_finds_the_list(transport: ContractTransport) -> None:
    checked = destination(transport, Mode.MEMBERSHIP, list_id=LIST_ID).check()
    assert checked.ok and "Newsletter" in checked.message
    (lists,) = transport.sent("GET", "/api/lists")
    assert lists.description == "klaviyo-get_lists.json"


def test_membership_needs_a_list_and_an_identifier_field() -> None:
    klaviyo = KlaviyoDestination(KlaviyoConfig.model_validate({"api_key": "pk_test"}))
    with pytest.raises(DefinitionError):
        klaviyo.open(Mode.MEMBERSHIP, ["email"])
    with pytest.raises(DefinitionError):
        klaviyo.open(Mode.UPSERT, ["first_name"])
    assert KlaviyoDestination.catalog.config_schema()["properties"]["api_key"]["writeOnly"]
