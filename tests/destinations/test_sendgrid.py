"""SendGrid destination: every request and every faked answer is checked against SendGrid's
own OpenAPI description (../shared/specs/sendgrid-marketing-*-v3.json)."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from corral.destinations import create
from corral.destinations.base import Batch, Job, Mode, Operation, Outcome, Record, RowResult
from corral.destinations.sendgrid import SendGridConfig, SendGridDestination
from corral.errors import DefinitionError, DestinationError, TransientDestinationError
from tests.destinations.openapi_contract import ContractTransport, FakeClock

DESCRIPTIONS = ["sendgrid-marketing-contacts-v3.json", "sendgrid-marketing-lists-v3.json"]
LIST_ID = "199abb98-0af3-4a8d-b371-6811ff85d062"
ERRORS_HOST = "https://sendgrid-exports.example.com"


class FakeSendGrid:
    """Marketing Campaigns contacts and lists, answering as SendGrid's description says."""

    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}  # by email
        self.members: set[str] = set()  # contact ids on LIST_ID
        self.jobs: dict[str, dict[str, Any]] = {}
        self.polls_until_done = 1
        self.invalid: set[str] = set()  # emails the upsert refuses outright (HTTP 400)
        self.failing: dict[str, str] = {}  # emails the job fails, with the reason
        self.error_files: dict[str, str] = {}
        self.gzip_error_files = False
        self.error_file_override: str | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if request.url.host != "api.sendgrid.com":
            text = self.error_files[path]
            if self.gzip_error_files:
                return httpx.Response(200, content=gzip.compress(text.encode()))
            return httpx.Response(200, text=text)
        if request.headers.get("authorization") != "Bearer SG.key":
            return httpx.Response(401, json={"errors": [{"message": "authorization required"}]})
        if (method, path) == ("PUT", "/v3/marketing/contacts"):
            return self.upsert(json.loads(request.content))
        if method == "GET" and path.startswith("/v3/marketing/contacts/imports/"):
            return self.job(path.rsplit("/", 1)[1])
        if method == "POST" and path.startswith("/v3/marketing/contacts/search/identifiers/"):
            return self.search(json.loads(request.content)["identifiers"])
        if method == "DELETE" and path == f"/v3/marketing/lists/{LIST_ID}/contacts":
            self.members -= set(request.url.params["contact_ids"].split(","))
            return httpx.Response(202, json={"job_id": str(uuid.uuid4())})
        if method == "GET" and path == f"/v3/marketing/lists/{LIST_ID}":
            return httpx.Response(200, json={"id": LIST_ID, "name": "VIPs", "contact_count": 2})
        if method == "GET" and path == "/v3/marketing/contacts/count":
            return httpx.Response(200, json={"contact_count": len(self.contacts)})
        return httpx.Response(404, json={"errors": [{"message": "not found"}]})

    def upsert(self, body: dict[str, Any]) -> httpx.Response:
        errors = [
            {"field": f"contacts[{i}].email", "message": "email is invalid"}
            for i, contact in enumerate(body["contacts"])
            if contact.get("email") in self.invalid
        ]
        if errors:
            return httpx.Response(400, json={"errors": errors})
        job_id = str(uuid.uuid4())
        self.jobs[job_id] = {"body": body, "polls": 0}
        return httpx.Response(202, json={"job_id": job_id})

    def job(self, job_id: str) -> httpx.Response:
        job = self.jobs[job_id]
        job["polls"] += 1
        if job["polls"] <= self.polls_until_done:
            return httpx.Response(200, json={"id": job_id, "status": "pending"})

        contacts = job["body"]["contacts"]
        failed = [c for c in contacts if c.get("email") in self.failing]
        for contact in contacts:
            if contact not in failed:
                stored = self.contacts.setdefault(contact["email"], {"id": str(uuid.uuid4())})
                stored.update(contact)
                if LIST_ID in job["body"].get("list_ids", []):
                    self.members.add(stored["id"])
        answer: dict[str, Any] = {
            "id": job_id,
            "job_type": "upsert",
            "status": "errored" if failed else "completed",
            "results": {"requested_count": len(contacts), "errored_count": len(failed)},
        }
        if failed:
            rows = "\n".join(f"{c['email']},{self.failing[c['email']]}" for c in failed)
            text = self.error_file_override or "email,errors\n" + rows + "\n"
            self.error_files[f"/errors/{job_id}.csv"] = text
            answer["results"]["errors_url"] = f"{ERRORS_HOST}/errors/{job_id}.csv"
        return httpx.Response(200, json=answer)

    def search(self, emails: list[str]) -> httpx.Response:
        result: dict[str, Any] = {}
        for email in emails:
            contact = self.contacts.get(email)
            if contact is None:
                result[email] = {"error": "contact not found"}
            else:
                result[email] = {
                    "contact": {
                        "id": contact["id"],
                        "email": email,
                        "list_ids": [LIST_ID] if contact["id"] in self.members else [],
                        "segment_ids": [],
                        "created_at": "2026-01-02T03:04:05Z",
                        "updated_at": "2026-01-02T03:04:05Z",
                    }
                }
        if all("error" in r for r in result.values()):
            return httpx.Response(404, json={"message": "no contacts found"})
        return httpx.Response(200, json={"result": result})


@pytest.fixture
def vendor() -> FakeSendGrid:
    return FakeSendGrid()


@pytest.fixture
def transport(vendor: FakeSendGrid) -> ContractTransport:
    # The errors file is a download link, not an API operation: nothing describes it.
    return ContractTransport(DESCRIPTIONS, vendor, undescribed=[("GET", r"/errors/.+\.csv")])


def destination(
    transport: httpx.BaseTransport, mode: Mode = Mode.UPSERT, **config: Any
) -> SendGridDestination:
    clock = FakeClock()
    settings = SendGridConfig.model_validate({"api_key": "SG.key", **config})
    sendgrid = SendGridDestination(settings, transport=transport, sleep=clock.sleep, clock=clock)
    sendgrid.open(mode, ["email", "first_name", "e1_T"])
    return sendgrid


def run(sendgrid: SendGridDestination, batch: Batch, limit: int = 10) -> list[RowResult]:
    answer = sendgrid.send(batch)
    for _ in range(limit):
        if not isinstance(answer, Job):
            return answer
        answer = sendgrid.poll(answer)
    raise AssertionError("the job never finished")


def rows(*emails: str | None, **fields: Any) -> list[Record]:
    return [
        Record(f"k{i}", {"email": email, "first_name": f"Name {i}", **fields})
        for i, email in enumerate(emails)
    ]


def test_upsert_queues_a_job_and_polls_it_to_completion(
    transport: ContractTransport, vendor: FakeSendGrid
) -> None:
    sendgrid = destination(transport)
    batch = Batch(Operation.ADD, rows("ann@example.com", None, "bo@example.com", e1_T=42))

    job = sendgrid.send(batch)
    assert isinstance(job, Job) and job.keys == ["k0", "k1", "k2"]
    still_running = sendgrid.poll(job)
    assert isinstance(still_running, Job)  # the fake answers "pending" once
    results = sendgrid.poll(still_running)

    assert isinstance(results, list)
    assert {r.key: r.outcome for r in results} == {
        "k0": Outcome.ACCEPTED,
        "k1": Outcome.REJECTED,
        "k2": Outcome.ACCEPTED,
    }
    assert "no email" in next(r.reason for r in results if r.key == "k1")  # type: ignore[operator]
    (upsert,) = transport.sent("PUT", "/v3/marketing/contacts")
    assert upsert.body == {
        "contacts": [
            {"email": "ann@example.com", "first_name": "Name 0", "custom_fields": {"e1_T": 42}},
            {"email": "bo@example.com", "first_name": "Name 2", "custom_fields": {"e1_T": 42}},
        ]
    }
    assert vendor.contacts["bo@example.com"]["first_name"] == "Name 2"
    assert all(e.description for e in transport.exchanges)  # every exchange was described


def test_membership_adds_with_list_ids_and_removes_by_contact_id(
    transport: ContractTransport, vendor: FakeSendGrid
) -> None:
    sendgrid = destination(transport, Mode.MEMBERSHIP, list_id=LIST_ID)
    run(sendgrid, Batch(Operation.ADD, rows("ann@example.com", "bo@example.com")))
    assert len(vendor.members) == 2
    assert transport.sent("PUT", "/v3/marketing/contacts")[0].body["list_ids"] == [LIST_ID]

    removal = Batch(
        Operation.REMOVE,
        [Record("k0", {"email": "ann@example.com"}), Record("k9", {"email": "gone@example.com"})],
    )
    results = run(sendgrid, removal)

    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert vendor.members == {vendor.contacts["bo@example.com"]["id"]}
    (search,) = transport.sent("POST", "/v3/marketing/contacts/search/identifiers/email")
    assert search.body == {"identifiers": ["ann@example.com", "gone@example.com"]}
    (delete,) = transport.sent("DELETE", f"/v3/marketing/lists/{LIST_ID}/contacts")
    assert delete.request.url.params["contact_ids"] == vendor.contacts["ann@example.com"]["id"]


def test_a_refused_upsert_rejects_the_named_contacts_and_resends_the_rest(
    transport: ContractTransport, vendor: FakeSendGrid
) -> None:
    vendor.invalid = {"bad@example"}
    sendgrid = destination(transport)

    results = run(sendgrid, Batch(Operation.ADD, rows("a@example.com", "bad@example", "c@x.io")))

    by_key = {r.key: r for r in results}
    assert by_key["k1"].outcome is Outcome.REJECTED
    assert by_key["k1"].reason == "email is invalid"
    assert by_key["k0"].outcome is by_key["k2"].outcome is Outcome.ACCEPTED
    first, second = transport.sent("PUT", "/v3/marketing/contacts")
    assert first.response.status_code == 400 and len(first.body["contacts"]) == 3
    assert [c["email"] for c in second.body["contacts"]] == ["a@example.com", "c@x.io"]


def test_an_errored_job_rejects_the_rows_its_error_file_names(
    transport: ContractTransport, vendor: FakeSendGrid
) -> None:
    vendor.failing = {"b@example.com": "phone_number_id is not a valid phone number"}
    sendgrid = destination(transport)

    results = run(sendgrid, Batch(Operation.CHANGE, rows("a@example.com", "b@example.com")))

    assert [(r.key, r.outcome, r.reason) for r in results] == [
        ("k0", Outcome.ACCEPTED, None),
        ("k1", Outcome.REJECTED, "phone_number_id is not a valid phone number"),
    ]
    (download,) = transport.sent("GET", r"/errors/.+\.csv")
    assert "authorization" not in download.request.headers  # the API key stays at SendGrid


def test_a_gzip_compressed_error_file_is_read(
    transport: ContractTransport, vendor: FakeSendGrid
) -> None:
    vendor.failing = {"a@example.com": "email is invalid"}
    vendor.gzip_error_files = True

    results = run(destination(transport), Batch(Operation.ADD, rows("a@example.com", "b@x.io")))

    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.REJECTED, "email is invalid"),
        (Outcome.ACCEPTED, None),
    ]


def test_an_errored_job_whose_file_names_no_row_rejects_them_all_for_the_next_run(
    transport: ContractTransport, vendor: FakeSendGrid
) -> None:
    vendor.failing = {"b@example.com": "reserved field invalid"}
    vendor.error_file_override = "row,message\n7,something went wrong\n"  # names no contact

    results = run(
        destination(transport), Batch(Operation.ADD, rows("a@example.com", "b@example.com"))
    )

    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.REJECTED]
    assert all("errored import job" in (r.reason or "") for r in results)


def test_upserts_are_split_at_six_megabytes(transport: ContractTransport) -> None:
    sendgrid = destination(transport)
    big = "x" * 250_000
    records = [
        Record(f"k{i}", {"email": f"p{i}@example.com", "e1_T": big}) for i in range(30)
    ]  # 7.5 MB

    results = run(sendgrid, Batch(Operation.ADD, records))

    assert all(r.outcome is Outcome.ACCEPTED for r in results) and len(results) == 30
    upserts = transport.sent("PUT", "/v3/marketing/contacts")
    assert len(upserts) == 2
    assert all(len(e.request.content) <= 6_000_000 for e in upserts)
    assert sum(len(e.body["contacts"]) for e in upserts) == 30


def test_a_bad_key_is_a_destination_error(vendor: FakeSendGrid) -> None:
    transport = ContractTransport(DESCRIPTIONS, vendor)
    settings = SendGridConfig.model_validate({"api_key": "SG.wrong"})
    sendgrid = SendGridDestination(settings, transport=transport)
    sendgrid.open(Mode.UPSERT, ["email"])

    with pytest.raises(DestinationError) as raised:
        sendgrid.send(Batch(Operation.ADD, rows("a@example.com")))
    assert not isinstance(raised.value, TransientDestinationError)
    assert "401" in raised.value.message
    assert sendgrid.check().ok is False


def test_rate_limiting_surfaces_as_a_transient_error() -> None:
    # SendGrid's description declares no 429 answer, so this fake is not contract-checked.
    calls: list[httpx.Request] = []

    def throttled(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(429, headers={"Retry-After": "2"}, json={"errors": []})

    clock = FakeClock()
    settings = SendGridConfig.model_validate({"api_key": "SG.key"})
    sendgrid = SendGridDestination(
        settings, transport=httpx.MockTransport(throttled), sleep=clock.sleep, clock=clock
    )
    sendgrid.open(Mode.UPSERT, ["email"])

    with pytest.raises(TransientDestinationError) as raised:
        sendgrid.send(Batch(Operation.ADD, rows("a@example.com")))
    assert raised.value.retry_after == 2.0
    assert len(calls) == 5  # the HTTP layer's attempts


def test_a_429_is_waited_out_until_sendgrids_reset_time(vendor: FakeSendGrid) -> None:
    # SendGrid's "Rate Limits" page: a 429 carries X-RateLimit-Reset, a Unix time.
    reset = str(int(time.time()) + 4)
    limited = httpx.Response(
        429,
        headers={
            "X-RateLimit-Limit": "150",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
        },
        json={"errors": [{"field": None, "message": "too many requests"}]},
    )
    answers = [limited]
    clock = FakeClock()
    settings = SendGridConfig.model_validate({"api_key": "SG.key"})
    sendgrid = SendGridDestination(
        settings,
        transport=httpx.MockTransport(lambda r: answers.pop(0) if answers else vendor(r)),
        sleep=clock.sleep,
        clock=clock,
    )
    sendgrid.open(Mode.UPSERT, ["email"])

    assert isinstance(sendgrid.send(Batch(Operation.ADD, rows("a@example.com"))), Job)
    assert len(clock.slept) == 1 and 2.0 < clock.slept[0] <= 4.0


def test_check_reads_the_list(transport: ContractTransport) -> None:
    assert destination(transport).check().ok
    checked = destination(transport, Mode.MEMBERSHIP, list_id=LIST_ID).check()
    assert checked.ok and "VIPs" in checked.message


def test_membership_needs_a_list_and_the_catalog_hides_the_key() -> None:
    settings = SendGridConfig.model_validate({"api_key": "SG.key"})
    with pytest.raises(DefinitionError):
        SendGridDestination(settings).open(Mode.MEMBERSHIP, ["email"])
    schema = SendGridDestination.catalog.config_schema()
    assert schema["properties"]["api_key"]["writeOnly"] is True
    built = create("sendgrid", {"api_key": "SG.key"})
    assert isinstance(built, SendGridDestination)
    assert "SG.key" not in repr(built.config)
