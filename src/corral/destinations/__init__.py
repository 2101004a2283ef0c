"""Destinations: the protocol, the catalog of every destination, identifier hashing.

`registry()` maps each destination's catalog name to its class; `create` builds one
from a configuration mapping (as written in a workspace's `destinations/*.yaml`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import ValidationError

from corral.destinations.base import (
    ALL_ACCEPTED,
    AllAccepted,
    Batch,
    Catalog,
    CheckResult,
    ColumnarDestination,
    ColumnBatch,
    Destination,
    Identifier,
    Job,
    Mode,
    Operation,
    Outcome,
    RateLimit,
    Record,
    RowResult,
)
from corral.errors import DefinitionError, UnknownReferenceError

# Module and class of every destination Corral ships; imported only when used, so a
# destination's optional dependencies (boto3 for S3) are needed only by its users.
_DESTINATIONS: dict[str, tuple[str, str]] = {
    "file": ("corral.destinations.files", "FileDestination"),
    "postgres": ("corral.destinations.postgres", "PostgresDestination"),
    "webhook": ("corral.destinations.webhook", "WebhookDestination"),
    "meta_custom_audiences": ("corral.destinations.meta", "MetaCustomAudienceDestination"),
    "google_customer_match": ("corral.destinations.google_ads", "GoogleCustomerMatchDestination"),
    "hubspot": ("corral.destinations.hubspot", "HubSpotDestination"),
    "klaviyo": ("corral.destinations.klaviyo", "KlaviyoDestination"),
    "sendgrid": ("corral.destinations.sendgrid", "SendGridDestination"),
    "braze": ("corral.destinations.braze", "BrazeDestination"),
}


_REGISTERED: dict[str, type[Destination]] = {}


def register(kind: str, cls: type[Destination]) -> None:
    """Make a destination class available as `type: <kind>` (plugins, tests)."""
    _REGISTERED[kind] = cls


def destination_types() -> list[str]:
    return sorted({*_DESTINATIONS, *_REGISTERED})


def destination_class(kind: str) -> type[Destination]:
    if kind in _REGISTERED:
        return _REGISTERED[kind]
    if kind not in _DESTINATIONS:
        raise UnknownReferenceError(
            f"there is no destination type {kind!r}",
            hint="destination types are: " + ", ".join(destination_types()),
        )
    module, name = _DESTINATIONS[kind]
    cls: type[Destination] = getattr(importlib.import_module(module), name)
    return cls


def create(
    kind: str,
    config: Mapping[str, Any],
    *,
    transport: httpx.BaseTransport | None = None,
    where: str | None = None,
) -> Destination:
    """A destination of type `kind` configured by `config`; bad settings name the field."""
    cls = destination_class(kind)
    try:
        settings = cls.catalog.config.model_validate(dict(config))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(config)'}: {e['msg']}"
            for e in error.errors()
        )
        raise DefinitionError(
            f"the {kind} destination's settings are wrong: {problems}",
            where=where,
            hint=f"see docs/destinations/ for the settings of {kind}",
        ) from None
    destination: Destination = cls(settings, transport=transport)  # type: ignore[call-arg]
    return destination


__all__ = [
    "ALL_ACCEPTED",
    "AllAccepted",
    "Batch",
    "Catalog",
    "CheckResult",
    "ColumnBatch",
    "ColumnarDestination",
    "Destination",
    "Identifier",
    "Job",
    "Mode",
    "Operation",
    "Outcome",
    "RateLimit",
    "Record",
    "RowResult",
    "create",
    "destination_class",
    "destination_types",
    "register",
]
