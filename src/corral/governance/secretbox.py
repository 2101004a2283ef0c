"""Secrets at rest: warehouse passwords, API keys and the like, encrypted with Fernet
(AES-128-CBC with an HMAC-SHA256, from `cryptography`).

The key comes from, in order: the `secret_key` a caller passes, the environment variable
`CORRAL_SECRET_KEY`, or the key file `<workspace>/.corral/secret.key`, which is created
with mode 0600 on first use. Several keys separated by commas rotate: the first encrypts,
any of them decrypts.

    box = SecretBox.from_key(SecretBox.generate_key())
    box.decrypt(box.encrypt("hunter2")) == "hunter2"
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from corral.errors import ConfigurationError, DefinitionError, UnknownReferenceError
from corral.governance.audit import write_audit
from corral.governance.models import SecretRow
from corral.governance.principals import Actor

logger = logging.getLogger(__name__)

KEY_ENV = "CORRAL_SECRET_KEY"
KEY_FILE = Path(".corral") / "secret.key"
_GENERATE = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key())"'


class SecretBox:
    """Encrypts and decrypts strings with one key (or several, while rotating)."""

    def __init__(self, keys: list[str], *, source: str) -> None:
        self.source = source  # where the key came from, for error messages
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"the secret key from {source} is not a Fernet key (32 url-safe base64 bytes)",
                hint=f"generate one with: {_GENERATE}",
            ) from None

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    @classmethod
    def from_key(cls, key: str, *, source: str = "the caller") -> SecretBox:
        return cls([part for part in key.split(",") if part.strip()], source=source)

    @classmethod
    def from_environment(cls, key_file: Path | None) -> SecretBox:
        """The key in `CORRAL_SECRET_KEY`, else the one in `key_file`, created if missing."""
        value = os.environ.get(KEY_ENV, "").strip()
        if value:
            return cls.from_key(value, source=f"${KEY_ENV}")
        if key_file is None:
            raise ConfigurationError(
                "Corral has no key to encrypt secrets with",
                hint=f"set {KEY_ENV} (generate one with: {_GENERATE}) or run from a workspace",
            )
        return cls.from_key(_read_or_create_key(key_file), source=str(key_file))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str, *, name: str | None = None) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            what = f"the secret {name!r}" if name else "a secret"
            raise ConfigurationError(
                f"{what} cannot be decrypted with the key from {self.source}",
                hint=f"set {KEY_ENV} (or restore the key file) to the key it was written "
                f"with; to rotate, list the new key first: {KEY_ENV}=new,old",
            ) from None


def _read_or_create_key(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning("the secret key file %s is readable by others (mode %o)", path, mode)
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(SecretBox.generate_key() + "\n")
    logger.info("created the secret key file %s; back it up with the metadata store", path)
    return path.read_text().strip()


class SecretStore:
    """Named secrets in the `secrets` table, encrypted. Only `get` returns a value."""

    def __init__(
        self, engine: sa.Engine, box: Callable[[], SecretBox], now: Callable[[], datetime]
    ) -> None:
        self._engine = engine
        self._box = box  # called on first use, so a store without secrets needs no key
        self._now = now

    def put(self, name: str, value: str, *, actor: Actor | None = None) -> None:
        if not name.strip():
            raise DefinitionError("a secret needs a name", where="secret")
        ciphertext = self._box().encrypt(value)
        now = self._now()
        with self._engine.begin() as connection:
            updated = connection.execute(
                sa.update(SecretRow)
                .where(SecretRow.name == name)
                .values(ciphertext=ciphertext, updated_at=now)
            )
            if updated.rowcount == 0:
                connection.execute(
                    sa.insert(SecretRow).values(
                        name=name, ciphertext=ciphertext, created_at=now, updated_at=now
                    )
                )
            write_audit(connection, now, actor, "secret.put", "secret", name)

    def get(self, name: str) -> str:
        with self._engine.connect() as connection:
            query = sa.select(SecretRow.ciphertext).where(SecretRow.name == name)
            ciphertext = connection.execute(query).scalar_one_or_none()
        if ciphertext is None:
            raise UnknownReferenceError(f"there is no secret {name!r}", where="secrets")
        return self._box().decrypt(ciphertext, name=name)

    def delete(self, name: str, *, actor: Actor | None = None) -> bool:
        now = self._now()
        with self._engine.begin() as connection:
            deleted = connection.execute(sa.delete(SecretRow).where(SecretRow.name == name))
            if deleted.rowcount:
                write_audit(connection, now, actor, "secret.delete", "secret", name)
            return deleted.rowcount > 0

    def names(self) -> list[str]:
        with self._engine.connect() as connection:
            query = sa.select(SecretRow.name).order_by(SecretRow.name)
            return list(connection.execute(query).scalars())
