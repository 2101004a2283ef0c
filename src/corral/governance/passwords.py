"""Password hashing with argon2id.

Hashes carry their own parameters, so raising them later needs no migration: a user's
hash is replaced at their next successful sign-in (`PasswordCheck.rehash`). A sign-in for
an address nobody has still runs one full verification (`Passwords.burn`), so the answer
takes as long as for a real user with a wrong password.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from corral.errors import DefinitionError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 takes any length; a cap keeps one request from costing much


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    rehash: str | None = None  # a new hash to store when the parameters changed


def check_password_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise DefinitionError(
            f"the password is {len(password)} characters long; it needs at least {MIN_LENGTH}",
            where="password",
            hint="a few unrelated words make a long password that is easy to remember",
        )
    if len(password) > MAX_LENGTH:
        raise DefinitionError(
            f"the password is longer than {MAX_LENGTH} characters", where="password"
        )


class Passwords:
    """Hashes and verifies passwords; argon2id with argon2-cffi's default parameters
    (RFC 9106, low memory) unless a `PasswordHasher` is given."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()

    def hash(self, password: str) -> str:
        check_password_policy(password)
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> PasswordCheck:
        if stored is None or len(password) > MAX_LENGTH:
            self.burn(password[:MAX_LENGTH])
            return PasswordCheck(ok=False)
        try:
            self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return PasswordCheck(ok=False)
        if self.hasher.check_needs_rehash(stored):
            return PasswordCheck(ok=True, rehash=self.hasher.hash(password))
        return PasswordCheck(ok=True)

    def burn(self, password: str) -> None:
        """Spend the time of one verification, for a user who does not exist."""
        with contextlib.suppress(VerificationError):
            self.hasher.verify(self._dummy_hash, password)

    @cached_property
    def _dummy_hash(self) -> str:
        return self.hasher.hash("not the password of anyone at all")
