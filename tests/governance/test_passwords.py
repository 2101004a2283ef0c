from __future__ import annotations

from typing import Literal

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from corral.errors import AuthenticationError, DefinitionError
from corral.governance import Governance, Passwords
from corral.governance.models import UserRow
from corral.store import Store
from tests.governance.conftest import PASSWORD, Clock, fast_passwords


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifications += 1
        return super().verify(hash, password)


def test_hashes_with_argon2id_and_verifies() -> None:
    passwords = fast_passwords()
    stored = passwords.hash(PASSWORD)

    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert passwords.verify(stored, PASSWORD).ok
    assert not passwords.verify(stored, PASSWORD + "!").ok
    assert not passwords.verify("not a hash", PASSWORD).ok


def test_short_and_huge_passwords_are_refused() -> None:
    with pytest.raises(DefinitionError, match="at least 10"):
        fast_passwords().hash("short")
    with pytest.raises(DefinitionError, match="longer than"):
        fast_passwords().hash("x" * 2000)


def test_a_hash_with_old_parameters_is_rehashed() -> None:
    old = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    new = Passwords(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    stored = old.hash(PASSWORD)

    check = new.verify(stored, PASSWORD)

    assert check.ok and check.rehash is not None
    assert new.verify(check.rehash, PASSWORD) == type(check)(ok=True, rehash=None)
    assert old.verify(old.hash(PASSWORD), PASSWORD).rehash is None


def test_an_unknown_user_costs_one_verification_like_a_wrong_password(
    store: Store, clock: Clock
) -> None:
    hasher = CountingHasher()
    governance = Governance(store, passwords=Passwords(hasher), clock=clock)
    governance.users.create("ada@example.com", "Ada", PASSWORD)

    for email, password in (("ada@example.com", "wrong password"), ("nobody@x.org", PASSWORD)):
        before = hasher.verifications
        with pytest.raises(AuthenticationError) as caught:
            governance.login(email, password)
        assert hasher.verifications - before == 1
        assert "email or password is wrong" in caught.value.message


def test_sign_in_upgrades_an_old_hash(store: Store, clock: Clock) -> None:
    Governance(store, passwords=fast_passwords(), clock=clock).users.create(
        "ada@example.com", "Ada", PASSWORD
    )
    stronger = Passwords(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    governance = Governance(store, passwords=stronger, clock=clock)

    governance.login("ADA@example.com", PASSWORD)

    with store.engine.connect() as connection:
        stored = connection.execute(sa.select(UserRow.password_hash)).scalar_one()
    assert stored is not None and "m=2048,t=2" in stored
    assert not stronger.hasher.check_needs_rehash(stored)
