from __future__ import annotations

import pytest

from corral.errors import DefinitionError
from corral.governance import ADMIN, Actor, Governance, scrub
from tests.governance.conftest import PASSWORD, Clock

ADA = Actor("u-ada", "ada@example.com", "10.0.0.7")


def test_scrub_hides_secret_looking_values_at_any_depth() -> None:
    details = {
        "name": "CRM",
        "password": "hunter2",
        "config": {"api_key": "sk-1", "Access-Token": "t", "region": "eu"},
        "fields": [{"client_secret": "s", "field": "email"}],
    }
    assert scrub(details) == {
        "name": "CRM",
        "password": "***",
        "config": {"api_key": "***", "Access-Token": "***", "region": "eu"},
        "fields": [{"client_secret": "***", "field": "email"}],
    }


def test_entries_record_who_what_when_and_where(governance: Governance, clock: Clock) -> None:
    governance.audit.record(
        ADA, "audience.update", "audience", "VIPs", {"fields": ["name"], "token": "t"}
    )

    [entry] = governance.audit.entries().entries
    assert (entry.at, entry.actor_id, entry.actor_email, entry.ip) == (
        clock.now,
        "u-ada",
        "ada@example.com",
        "10.0.0.7",
    )
    assert (entry.action, entry.target_type, entry.target_name) == (
        "audience.update",
        "audience",
        "VIPs",
    )
    assert entry.details == {"fields": ["name"], "token": "***"}


def test_entries_page_newest_first_and_filter(governance: Governance, clock: Clock) -> None:
    bob = Actor("u-bob", "bob@example.com")
    for number in range(5):
        clock.advance(minutes=1)
        governance.audit.record(ADA, "audience.update", "audience", f"A{number}")
        governance.audit.record(bob, "sync.run", "sync", f"S{number}")

    first = governance.audit.entries(limit=4)
    second = governance.audit.entries(limit=4, cursor=first.next_cursor)
    third = governance.audit.entries(limit=4, cursor=second.next_cursor)
    names = [e.target_name for page in (first, second, third) for e in page.entries]
    assert names == ["S4", "A4", "S3", "A3", "S2", "A2", "S1", "A1", "S0", "A0"]
    assert third.next_cursor is None

    assert len(governance.audit.entries(actor="BOB@example.com").entries) == 5
    assert len(governance.audit.entries(actor="u-ada").entries) == 5
    assert len(governance.audit.entries(action="audience.").entries) == 5
    assert len(governance.audit.entries(action="audience").entries) == 0
    assert [e.target_name for e in governance.audit.entries(target="S2").entries] == ["S2"]
    assert len(governance.audit.entries(target_type="sync").entries) == 5
    with pytest.raises(DefinitionError, match="cursor"):
        governance.audit.entries(cursor="yesterday")


def test_every_governance_change_is_audited_without_secrets(governance: Governance) -> None:
    ada = governance.users.create("ada@example.com", "Ada", PASSWORD, [ADMIN], actor=ADA)
    user = governance.users.create("bob@example.com", "Bob", PASSWORD, actor=ADA)
    governance.users.update(user.id, name="Robert", password="another passphrase", actor=ADA)
    governance.roles.create("analysts", grants=[("data:view", "*")], actor=ADA)
    governance.roles.update("analysts", description="x", actor=ADA)
    governance.roles.delete("analysts", actor=ADA)
    token = governance.tokens.create(ada.id, "ci", actor=ADA)
    governance.tokens.revoke(token.token.id, actor=ADA)
    login = governance.login("ada@example.com", PASSWORD, ip="10.0.0.8")
    governance.logout(login.new_session.session, actor=ADA)
    with pytest.raises(Exception, match="wrong"):
        governance.login("ada@example.com", "not my password", ip="10.0.0.9")
    governance.users.delete(user.id, actor=ADA)

    entries = list(reversed(governance.audit.entries().entries))
    assert [e.action for e in entries] == [
        "user.create",
        "user.create",
        "user.update",
        "role.create",
        "role.update",
        "role.delete",
        "token.create",
        "token.revoke",
        "auth.login",
        "auth.logout",
        "auth.login_failed",
        "user.delete",
    ]
    assert entries[2].details == {"name": "Robert", "password": "***"}
    assert entries[8].ip == "10.0.0.8" and entries[8].actor_email == "ada@example.com"
    assert entries[10].actor_id is None and entries[10].target_name == "ada@example.com"
    everything = repr(entries)
    assert PASSWORD not in everything and "another passphrase" not in everything
    assert token.value not in everything and "$argon2" not in everything
