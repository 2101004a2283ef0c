"""The retail schema shapes the evaluator and differential tests share.

The demo's models and relationships, with the consents relationship written from
consents, so that users reach consents by a reverse relationship.
"""

from __future__ import annotations

from typing import Any

from corral.schema import SchemaDefinition


def retail_schema(
    traits: list[dict[str, Any]], *, prefix: str = "", **parent: Any
) -> SchemaDefinition:
    """The schema with `traits`, each table named `prefix` + model name."""

    def model(name: str, key: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "table": f"{prefix}{name}", "primary_key": key, **extra}

    return SchemaDefinition.model_validate({
        "parent": model("users", "user_id", **parent),
        "models": [
            model("households", "household_id"),
            model("products", "product_id"),
            model("purchases", "order_id", timestamp="purchased_at"),
            model("events", "event_id", event={"timestamp": "occurred_at", "type": "event_type"}),
            model("consents", "consent_id", timestamp="updated_on"),
        ],
        "relationships": [
            {"from": "users", "to": "purchases", "cardinality": "one_to_many",
             "join": {"user_id": "user_id"}},
            {"from": "purchases", "to": "products", "cardinality": "many_to_one",
             "join": {"product_id": "product_id"}},
            {"from": "users", "to": "households", "cardinality": "many_to_one",
             "join": {"household_id": "household_id"}},
            {"from": "users", "to": "events", "cardinality": "one_to_many",
             "join": {"user_id": "user_id"}},
            {"from": "consents", "to": "users", "cardinality": "many_to_one",
             "join": {"user_id": "user_id"}},
            {"name": "purchased_products", "from": "users", "through": ["purchases", "products"]},
        ],
        "traits": traits,
    })  # fmt: skip
