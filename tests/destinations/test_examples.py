"""The runnable examples in the destination modules' docstrings run and hold."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from corral.destinations import braze, http, hubspot, klaviyo, sendgrid


@pytest.mark.parametrize("module", [http, hubspot, klaviyo, sendgrid, braze])
def test_module_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted >= 1
    assert result.failed == 0
