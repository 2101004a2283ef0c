from __future__ import annotations

import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from corral.errors import ConfigurationError, UnknownReferenceError
from corral.governance import KEY_ENV, Actor, Governance, SecretBox
from corral.governance.models import SecretRow
from corral.store import Store, default_store_url
from tests.governance.conftest import fast_passwords


def test_a_box_round_trips_and_hides_the_plaintext() -> None:
    box = SecretBox.from_key(SecretBox.generate_key())
    ciphertext = box.encrypt("hunter2 and more")

    assert "hunter2" not in ciphertext
    assert box.decrypt(ciphertext) == "hunter2 and more"
    assert box.encrypt("same") != box.encrypt("same")  # a fresh IV every time


def test_the_wrong_key_fails_cleanly_naming_the_fix() -> None:
    ciphertext = SecretBox.from_key(SecretBox.generate_key()).encrypt("hunter2")
    other = SecretBox.from_key(SecretBox.generate_key(), source="$CORRAL_SECRET_KEY")

    with pytest.raises(ConfigurationError) as caught:
        other.decrypt(ciphertext, name="warehouse password")

    assert "'warehouse password' cannot be decrypted" in caught.value.message
    assert caught.value.hint is not None and KEY_ENV in caught.value.hint
    assert "hunter2" not in str(caught.value)


def test_keys_rotate_new_first() -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    written_with_old = SecretBox.from_key(old).encrypt("hunter2")

    rotated = SecretBox.from_key(f"{new},{old}")

    assert rotated.decrypt(written_with_old) == "hunter2"
    assert SecretBox.from_key(new).decrypt(rotated.encrypt("x")) == "x"


def test_a_malformed_key_says_how_to_make_one() -> None:
    with pytest.raises(ConfigurationError, match="not a Fernet key") as caught:
        SecretBox.from_key("too short")
    assert caught.value.hint is not None and "generate_key" in caught.value.hint


def test_the_key_file_is_created_private_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    key_file = tmp_path / ".corral" / "secret.key"

    ciphertext = SecretBox.from_environment(key_file).encrypt("hunter2")

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert SecretBox.from_environment(key_file).decrypt(ciphertext) == "hunter2"


def test_the_environment_key_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SecretBox.generate_key()
    monkeypatch.setenv(KEY_ENV, key)

    box = SecretBox.from_environment(tmp_path / "secret.key")

    assert not (tmp_path / "secret.key").exists()
    assert SecretBox.from_key(key).decrypt(box.encrypt("x")) == "x"


def test_no_key_anywhere_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigurationError, match="no key") as caught:
        SecretBox.from_environment(None)
    assert caught.value.hint is not None and KEY_ENV in caught.value.hint


def test_a_sqlite_store_keeps_its_key_beside_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    store = Store(default_store_url(tmp_path))
    store.upgrade()
    governance = Governance(store, passwords=fast_passwords())

    governance.secrets.put("braze api key", "sk-live-123")

    assert governance.key_file == (tmp_path / ".corral" / "secret.key").resolve()
    assert stat.S_IMODE((tmp_path / ".corral" / "secret.key").stat().st_mode) == 0o600
    assert Governance(store).secrets.get("braze api key") == "sk-live-123"
    workspace = tmp_path / "elsewhere"
    assert Governance(store, workspace=workspace).key_file == workspace / ".corral" / "secret.key"
    store.close()


def test_named_secrets_are_stored_encrypted_and_never_listed(governance: Governance) -> None:
    actor = Actor("u1", "ada@example.com", "10.0.0.7")
    governance.secrets.put("warehouse password", "hunter2", actor=actor)
    governance.secrets.put("braze api key", "sk-live-123")
    governance.secrets.put("warehouse password", "hunter3", actor=actor)

    assert governance.secrets.names() == ["braze api key", "warehouse password"]
    assert governance.secrets.get("warehouse password") == "hunter3"
    with governance.store.engine.connect() as connection:
        stored = " ".join(connection.execute(sa.select(SecretRow.ciphertext)).scalars())
    assert "hunter" not in stored and "sk-live" not in stored

    assert governance.secrets.delete("braze api key", actor=actor)
    assert not governance.secrets.delete("braze api key")
    with pytest.raises(UnknownReferenceError, match="no secret 'braze api key'"):
        governance.secrets.get("braze api key")

    entries = governance.audit.entries(target_type="secret").entries
    assert [e.action for e in entries] == [
        "secret.delete",
        "secret.put",
        "secret.put",
        "secret.put",
    ]
    assert "hunter" not in repr(entries) and "sk-live" not in repr(entries)


def test_secrets_written_with_another_key_fail_cleanly(
    governance: Governance, store: Store
) -> None:
    governance.secrets.put("warehouse password", "hunter2")
    other = Governance(store, secret_key=SecretBox.generate_key())

    with pytest.raises(ConfigurationError, match="cannot be decrypted"):
        other.secrets.get("warehouse password")
