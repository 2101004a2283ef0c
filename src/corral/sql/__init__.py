"""Building SQL as sqlglot trees and rendering it for each warehouse dialect."""

from corral.sql.dialects import (
    ALL_DIALECTS,
    EXECUTED_DIALECTS,
    RENDERED_DIALECTS,
    canonical_dialect,
    parse_one,
    render,
    sqlglot_dialect,
)

__all__ = [
    "ALL_DIALECTS",
    "EXECUTED_DIALECTS",
    "RENDERED_DIALECTS",
    "canonical_dialect",
    "parse_one",
    "render",
    "sqlglot_dialect",
]
