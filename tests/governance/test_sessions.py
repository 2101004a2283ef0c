from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from corral.errors import AuthenticationError
from corral.governance import ADMIN, Governance
from corral.governance.models import SessionRow
from tests.governance.conftest import PASSWORD, Clock


def sign_in(governance: Governance, email: str = "ada@example.com") -> str:
    if governance.users.by_email(email) is None:
        governance.users.create(email, "Ada", PASSWORD, [ADMIN])
    return governance.login(email, PASSWORD, ip="10.0.0.7").new_session.token


def test_only_the_digests_of_the_session_and_csrf_tokens_are_stored(
    governance: Governance,
) -> None:
    governance.users.create("ada@example.com", "Ada", PASSWORD, [ADMIN])
    login = governance.login("ada@example.com", PASSWORD, ip="10.0.0.7", user_agent="test")
    token, csrf = login.new_session.token, login.new_session.csrf_token

    with governance.store.engine.connect() as connection:
        row = connection.execute(sa.select(SessionRow)).one()
    assert len(token) >= 43 and token != csrf  # 32 random bytes, url-safe
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.csrf_hash == hashlib.sha256(csrf.encode()).hexdigest()
    assert token not in str(tuple(row)) and csrf not in str(tuple(row))
    assert (row.ip, row.user_agent) == ("10.0.0.7", "test")

    principal, session = governance.principal_for_session(token)
    assert principal.email == "ada@example.com" and not principal.via_token
    assert governance.sessions.csrf_matches(session, csrf)
    assert not governance.sessions.csrf_matches(session, token)
    assert not governance.sessions.csrf_matches(session, None)


def test_an_unknown_token_is_refused(governance: Governance) -> None:
    with pytest.raises(AuthenticationError, match="expired or was ended"):
        governance.principal_for_session("made-up")


def test_a_session_ends_when_idle(governance: Governance, clock: Clock) -> None:
    token = sign_in(governance)
    clock.advance(hours=11)
    governance.principal_for_session(token)  # use keeps it alive
    clock.advance(hours=11)
    governance.principal_for_session(token)

    clock.advance(hours=12)
    with pytest.raises(AuthenticationError):
        governance.principal_for_session(token)
    assert governance.sessions.count(governance.users.by_email("ada@example.com").id) == 0  # type: ignore[union-attr]


def test_a_session_ends_at_its_absolute_lifetime_however_busy(
    governance: Governance, clock: Clock
) -> None:
    token = sign_in(governance)
    for _ in range(16):  # 160 hours, never idle for long
        clock.advance(hours=10)
        governance.principal_for_session(token)

    clock.advance(hours=10)  # 170 hours: past the 7 days
    with pytest.raises(AuthenticationError):
        governance.principal_for_session(token)


def test_purge_deletes_expired_sessions_only(governance: Governance, clock: Clock) -> None:
    old = sign_in(governance)
    clock.advance(hours=13)
    new = sign_in(governance)

    assert governance.sessions.purge_expired() == 1
    governance.principal_for_session(new)
    with pytest.raises(AuthenticationError):
        governance.principal_for_session(old)


def test_disabling_a_user_ends_their_sessions(governance: Governance) -> None:
    governance.users.create("root@example.com", "Root", PASSWORD, [ADMIN])
    token = sign_in(governance, "ada@example.com")
    user = governance.users.by_email("ada@example.com")
    assert user is not None

    governance.users.update(user.id, disabled=True)

    with pytest.raises(AuthenticationError):
        governance.principal_for_session(token)
    with pytest.raises(AuthenticationError, match="disabled"):
        governance.login("ada@example.com", PASSWORD)


def test_a_new_password_ends_other_sessions_but_the_one_that_set_it(
    governance: Governance,
) -> None:
    first, second = sign_in(governance), sign_in(governance)
    user = governance.users.by_email("ada@example.com")
    assert user is not None
    _, keep = governance.principal_for_session(second)

    governance.users.update(user.id, password="a brand new passphrase", keep_session=keep.id)

    governance.principal_for_session(second)
    with pytest.raises(AuthenticationError):
        governance.principal_for_session(first)
    with pytest.raises(AuthenticationError):
        governance.login("ada@example.com", PASSWORD)
    governance.login("ada@example.com", "a brand new passphrase")


def test_login_records_the_time_and_logout_ends_the_session(
    governance: Governance, clock: Clock
) -> None:
    token = sign_in(governance)
    user = governance.users.by_email("ada@example.com")
    assert user is not None and user.last_login_at == clock.now

    _, session = governance.principal_for_session(token)
    governance.logout(session)
    with pytest.raises(AuthenticationError):
        governance.principal_for_session(token)
