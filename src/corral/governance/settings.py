"""Governance settings and the small helpers its services share."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from corral.governance.passwords import Passwords


@dataclass(frozen=True)
class GovernanceSettings:
    """How long sessions last, how hard sign-in is throttled, and cookie security.

    `secure_cookies`: None sets the Secure flag when the request came over https (behind
    a proxy, run uvicorn with `--proxy-headers` so it knows); True or False forces it.
    """

    session_idle: timedelta = timedelta(hours=12)  # signed out after this long unused
    session_lifetime: timedelta = timedelta(days=7)  # signed out this long after sign-in
    login_max_failures: int = 10  # per address and client, within `login_window`
    login_window: timedelta = timedelta(minutes=15)
    touch_every: timedelta = timedelta(minutes=1)  # how often last-seen times are written
    secure_cookies: bool | None = None


@dataclass(frozen=True)
class Context:
    engine: sa.Engine
    now: Callable[[], datetime]
    settings: GovernanceSettings
    passwords: Passwords


def digest(value: str) -> str:
    """The SHA-256 of a session or token value, as stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_id() -> str:
    return str(uuid.uuid4())
