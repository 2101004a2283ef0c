from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from corral.errors import AuthenticationError, DefinitionError
from corral.governance import EDITOR, VIEWER, Governance
from corral.governance.models import ApiTokenRow
from tests.governance.conftest import PASSWORD, Clock


def owner(governance: Governance, roles: list[str] | None = None) -> str:
    return governance.users.create("bot@example.com", "Bot", PASSWORD, roles or [EDITOR]).id


def test_a_token_is_shown_once_and_stored_as_a_digest(governance: Governance) -> None:
    user_id = owner(governance)

    created = governance.tokens.create(user_id, "nightly dbt job")

    assert re.fullmatch(r"crl_[A-Za-z0-9_-]{43}", created.value)
    assert created.token.prefix == created.value[:8]
    with governance.store.engine.connect() as connection:
        row = connection.execute(sa.select(ApiTokenRow)).one()
    assert row.token_hash == hashlib.sha256(created.value.encode()).hexdigest()
    assert created.value not in str(tuple(row))
    listed = governance.tokens.list(user_id)
    assert listed == [created.token] and created.value not in repr(listed)


def test_a_token_acts_as_its_owner_with_the_owners_current_grants(
    governance: Governance, clock: Clock
) -> None:
    user_id = owner(governance)
    value = governance.tokens.create(user_id, "ci").value

    principal = governance.principal_for_token(value)
    assert principal.user_id == user_id and principal.via_token
    assert principal.token_id == governance.tokens.list()[0].id
    assert principal.can("audiences:edit")
    assert governance.tokens.list()[0].last_used_at == clock.now

    governance.users.update(user_id, roles=[VIEWER])
    assert not governance.principal_for_token(value).can("audiences:edit")


def test_expired_revoked_and_disabled_tokens_are_refused(
    governance: Governance, clock: Clock
) -> None:
    governance.users.create("root@example.com", "Root", PASSWORD, ["admin"])
    user_id = owner(governance)
    expiring = governance.tokens.create(user_id, "short", expires_at=clock.now + timedelta(days=1))
    revoked = governance.tokens.create(user_id, "revoked")
    kept = governance.tokens.create(user_id, "kept")

    governance.tokens.revoke(revoked.token.id)
    clock.advance(days=1)

    for value in (expiring.value, revoked.value, "crl_unknown", "not-even-a-token"):
        with pytest.raises(AuthenticationError, match="unknown, expired or revoked"):
            governance.principal_for_token(value)
    governance.principal_for_token(kept.value)
    assert not governance.tokens.require(revoked.token.id).is_active(clock.now)

    governance.users.update(user_id, disabled=True)
    with pytest.raises(AuthenticationError):
        governance.principal_for_token(kept.value)


def test_token_names_and_expiries_are_checked(governance: Governance, clock: Clock) -> None:
    user_id = owner(governance)
    with pytest.raises(DefinitionError, match="needs a name"):
        governance.tokens.create(user_id, "  ")
    with pytest.raises(DefinitionError, match="in the past"):
        governance.tokens.create(user_id, "late", expires_at=clock.now)


def test_deleting_the_owner_deletes_their_tokens(governance: Governance) -> None:
    governance.users.create("root@example.com", "Root", PASSWORD, ["admin"])
    user_id = owner(governance)
    value = governance.tokens.create(user_id, "ci").value

    governance.users.delete(user_id)

    assert governance.tokens.list() == []
    with pytest.raises(AuthenticationError):
        governance.principal_for_token(value)
