"""Fixtures for the selection tests."""

from __future__ import annotations

from typing import Any

import pytest
from selection_fixtures import make_inputs


@pytest.fixture
def inputs() -> dict[str, Any]:
    """A fresh set of inputs covering every input type."""
    return make_inputs()
