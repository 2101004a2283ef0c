"""Destination secrets: stored encrypted, referenced from YAML, never sent back.

A destination type marks its secret settings as `SecretStr` in its configuration model
(a webhook's `headers` are a mapping of them). When a client writes a destination:

    config: {url: "https://...", secret: "s3cr3t"}          what the client sends
    config: {url: "https://...", secret: {secret: "destination:Hooks:secret:1f2e3d4c"}}

and the value goes, encrypted, to the governance secrets store under that name. Reading
the destination shows `{"set": true}` in its place. A client keeps a secret unchanged by
sending `{"set": true}` back, points it at an environment variable with `{"env": NAME}`,
and removes it with null. The sync engine reads `{secret: NAME}` from the same store.
"""

from __future__ import annotations

import types
import uuid
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr

from corral.errors import DefinitionError
from corral.governance import Actor, SecretStore

SecretKind = Literal["value", "map"]
SET = {"set": True}


def secret_fields(config: type[BaseModel]) -> dict[str, SecretKind]:
    """The secret settings of a configuration model, by their YAML key."""
    found: dict[str, SecretKind] = {}
    for name, info in config.model_fields.items():
        key = info.alias or name
        if _is_secret(info.annotation):
            found[key] = "value"
        elif _origin(info.annotation) is dict:
            args = get_args(_without_none(info.annotation))
            if len(args) == 2 and _is_secret(args[1]):
                found[key] = "map"
    return found


def _without_none(annotation: Any) -> Any:
    """`X | None` as X; other annotations as they are."""
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _origin(annotation: Any) -> Any:
    return get_origin(_without_none(annotation))


def _is_secret(annotation: Any) -> bool:
    return _without_none(annotation) is SecretStr


def masked(config: Mapping[str, Any], fields: Mapping[str, SecretKind]) -> dict[str, Any]:
    """The configuration as clients see it: every secret as {"set": true} (or its env)."""
    shown: dict[str, Any] = {}
    for key, value in config.items():
        kind = fields.get(key)
        if kind == "map" and isinstance(value, dict):
            shown[key] = {k: _mask(v) for k, v in value.items()}
        elif kind is not None:
            shown[key] = _mask(value)
        else:
            shown[key] = value
    return shown


def _mask(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict) and set(value) == {"env"}:
        return {"set": True, "env": value["env"]}
    return dict(SET)


class SecretWriter:
    """Turns the configuration a client sent into the one the YAML holds.

    New values are put into the store at once; `discard()` removes those the new
    configuration no longer references (call it once the YAML is written), and
    `rollback()` removes what this writer stored (when the write failed).
    """

    def __init__(self, store: SecretStore | None, destination: str, actor: Actor) -> None:
        self.store = store
        self.destination = destination
        self.actor = actor
        self.stored: list[str] = []
        self.kept: set[str] = set()

    def convert(
        self,
        sent: Mapping[str, Any],
        before: Mapping[str, Any],
        fields: Mapping[str, SecretKind],
    ) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for key, value in sent.items():
            kind = fields.get(key)
            if kind is None:
                config[key] = value
            elif kind == "map":
                config[key] = self._convert_map(key, value, before.get(key))
            else:
                config[key] = self._convert(key, value, before.get(key))
        return {k: v for k, v in config.items() if v is not None}

    def _convert_map(self, key: str, value: Any, before: Any) -> Any:
        if value is None or value == SET:
            return None if value is None else before
        if not isinstance(value, dict):
            raise DefinitionError(
                f"{key!r} is a mapping of secrets", where=self._where(key), hint="send an object"
            )
        earlier = before if isinstance(before, dict) else {}
        converted = {k: self._convert(f"{key}.{k}", v, earlier.get(k)) for k, v in value.items()}
        return {k: v for k, v in converted.items() if v is not None}

    def _convert(self, key: str, value: Any, before: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            # A new name for every value, so a failed write can drop it and leave the old.
            name = f"destination:{self.destination}:{key}:{uuid.uuid4().hex[:8]}"
            self._store().put(name, value, actor=self.actor)
            self.stored.append(name)
            self.kept.add(name)
            return {"secret": name}
        if isinstance(value, dict) and value.get("set") is True and set(value) <= {"set", "env"}:
            if before is None:
                raise DefinitionError(
                    f"{key!r} has no value to keep",
                    where=self._where(key),
                    hint="send the secret's value, or null to leave it unset",
                )
            if isinstance(before, dict) and set(before) == {"secret"}:
                self.kept.add(str(before["secret"]))
            return before
        if isinstance(value, dict) and set(value) == {"env"} and isinstance(value["env"], str):
            return {"env": value["env"]}
        raise DefinitionError(
            f'{key!r} is a secret: send its value as text, {{"set": true}} to keep it, '
            '{"env": "NAME"} to read it from the environment, or null',
            where=self._where(key),
        )

    def discard(self, before: Mapping[str, Any], fields: Mapping[str, SecretKind]) -> None:
        """Delete the stored secrets `before` referenced that the new YAML does not."""
        for name in stored_names(before, fields):
            if name not in self.kept and self.store is not None:
                self.store.delete(name, actor=self.actor)

    def rollback(self) -> None:
        if self.store is not None:
            for name in self.stored:
                self.store.delete(name, actor=self.actor)

    def _store(self) -> SecretStore:
        if self.store is None:
            raise DefinitionError(
                "this server keeps no secrets store, so it cannot save secret values",
                where=f"destination {self.destination}",
                hint='use {"env": "NAME"} for the secret instead',
            )
        return self.store

    def _where(self, key: str) -> str:
        return f"destination {self.destination} > config > {key}"


def stored_names(config: Mapping[str, Any], fields: Mapping[str, SecretKind]) -> list[str]:
    """The names of stored secrets a YAML configuration refers to."""
    names = []
    for key, kind in fields.items():
        value = config.get(key)
        values = list(value.values()) if kind == "map" and isinstance(value, dict) else [value]
        names += [str(v["secret"]) for v in values if isinstance(v, dict) and set(v) == {"secret"}]
    return names


def placeholders(config: Mapping[str, Any], fields: Mapping[str, SecretKind]) -> dict[str, Any]:
    """The YAML configuration with every secret replaced by a dummy value, to validate the
    other settings without reading the secrets."""
    checked: dict[str, Any] = {}
    for key, value in config.items():
        kind = fields.get(key)
        if kind == "map" and isinstance(value, dict):
            checked[key] = {k: "secret" for k in value}
        elif kind is not None:
            checked[key] = "secret"
        else:
            checked[key] = value
    return checked
