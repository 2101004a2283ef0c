"""Pagination: every list takes `limit` and an opaque `cursor`, and says where to go next.

    GET /api/v1/audiences?limit=2            {"items": [...], "next_cursor": "eyJvIjoyfQ"}
    GET /api/v1/audiences?limit=2&cursor=eyJvIjoyfQ

A cursor is URL-safe base64 of a small JSON object: an offset into a list that is stable
between requests (workspace files in name order, runs newest first), or the last key seen
(audience members, in primary key order). Clients pass it back unchanged; a cursor that
does not decode is a 422.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from corral.errors import DefinitionError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT}).")
]
Cursor = Annotated[
    str | None,
    Query(max_length=2000, description="`next_cursor` of the previous page; omit for the first."),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(data: dict[str, Any]) -> str:
    text = json.dumps(data, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise DefinitionError(
            "the cursor is not one this API handed out",
            where="cursor",
            hint="pass `next_cursor` from the previous page unchanged, or omit it",
        )
    return data


def offset_of(cursor: str | None) -> int:
    """The offset an offset cursor holds (0 without a cursor)."""
    if cursor is None:
        return 0
    offset = decode_cursor(cursor).get("o")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise DefinitionError(
            "the cursor does not belong to this list",
            where="cursor",
            hint="pass `next_cursor` from the previous page of the same list",
        )
    return offset


def paginate(items: Sequence[T], limit: int, cursor: str | None) -> Page[T]:
    """One page of a list held whole in memory (workspace files are few)."""
    start = offset_of(cursor)
    end = start + limit
    more = end < len(items)
    return Page(
        items=list(items[start:end]), next_cursor=encode_cursor({"o": end}) if more else None
    )


def page_of_fetched(fetched: Sequence[T], start: int, limit: int) -> Page[T]:
    """A page from `fetched`, the first `start + limit + 1` items of a longer list."""
    end = start + limit
    more = len(fetched) > end
    return Page(
        items=list(fetched[start:end]), next_cursor=encode_cursor({"o": end}) if more else None
    )
