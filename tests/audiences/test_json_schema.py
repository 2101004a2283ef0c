"""The condition tree's JSON Schema is published in docs/ and kept current."""

from __future__ import annotations

import json
import os
from pathlib import Path

from corral.audiences.conditions import AudienceDefinition
from tests.helpers.demo_schema import demo_workspace

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "audience.schema.json"


def current_schema() -> str:
    return json.dumps(AudienceDefinition.model_json_schema(), indent=2, sort_keys=True) + "\n"


def test_published_json_schema_is_current() -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        PUBLISHED.write_text(current_schema())
    assert PUBLISHED.read_text() == current_schema(), "UPDATE_GOLDEN=1 rewrites it"


def test_canonical_form_round_trips_for_every_demo_audience() -> None:
    for audience in demo_workspace().audiences.values():
        canonical = audience.model_dump(mode="json", exclude_none=True)
        assert AudienceDefinition.model_validate(canonical) == audience
        assert AudienceDefinition.model_validate_json(json.dumps(canonical)) == audience
