"""The demo workspace's schema bound to the demo tables' column types, without a warehouse."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlglot

from corral.schema import Schema, SchemaDefinition
from corral.workspace import Workspace, load_workspace

DEMO_WORKSPACE = Path(__file__).resolve().parents[2] / "src" / "corral" / "demo" / "workspace"
AS_OF = datetime(2026, 12, 1)

# The fixed column types of the demo tables (see docs/demo.md).
DEMO_COLUMNS = {
    "users": {
        "user_id": "integer", "email": "string", "phone": "string", "first_name": "string",
        "last_name": "string", "country": "string", "state": "string", "city": "string",
        "zip": "string", "birthday": "date", "signup_at": "timestamp", "plan": "string",
        "lifetime_value": "decimal", "marketing_opt_in": "boolean", "household_id": "integer",
    },
    "households": {
        "household_id": "integer", "size": "integer", "income_band": "string",
        "region": "string",
    },
    "products": {
        "product_id": "integer", "name": "string", "category": "string", "brand": "string",
        "price": "decimal",
    },
    "purchases": {
        "order_id": "integer", "user_id": "integer", "product_id": "integer",
        "amount": "decimal", "currency": "string", "channel": "string",
        "purchased_at": "timestamp",
    },
    "events": {
        "event_id": "integer", "user_id": "integer", "event_type": "string",
        "occurred_at": "timestamp", "product_id": "integer", "category": "string",
        "revenue": "decimal", "channel": "string",
    },
    "consents": {
        "user_id": "integer", "purpose": "string", "granted": "boolean",
        "updated_at": "timestamp",
    },
}  # fmt: skip


def demo_workspace() -> Workspace:
    return load_workspace(DEMO_WORKSPACE)


def demo_schema() -> Schema:
    return Schema.bind(demo_workspace().schema, DEMO_COLUMNS)  # type: ignore[arg-type]


def qualified_schema(definition: SchemaDefinition, schema_name: str) -> SchemaDefinition:
    """The schema with every model's table (or the tables its SQL reads) in `schema_name`."""
    data = definition.model_dump(by_alias=True, exclude_none=True)
    for model in (data["parent"], *data["models"]):
        if "table" in model:
            model["table"] = f"{schema_name}.{model['table']}"
            continue
        query = sqlglot.parse_one(model["sql"], dialect="duckdb")
        for table in query.find_all(sqlglot.exp.Table):
            table.set("db", sqlglot.exp.to_identifier(schema_name))
        model["sql"] = query.sql("duckdb")
    return SchemaDefinition.model_validate(data)
