"""The connection settings document themselves: every field says what it is for."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from msgbus.transport.settings import ConnectionConfig, TLSConfig


@pytest.mark.parametrize("model", [ConnectionConfig, TLSConfig])
def test_every_field_has_a_description(model: type[BaseModel]) -> None:
    assert [name for name, f in model.model_fields.items() if not f.description] == []
