from __future__ import annotations

import pytest

from tests.unit.identity.idfixtures import UNIT_SECRET, Material, write_identities
from tollhouse.identity import Identifier, load_identities

SECRET = UNIT_SECRET


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return write_identities(tmp_path_factory.mktemp("rules"), SECRET)


@pytest.fixture(scope="session")
def identifier(material: Material) -> Identifier:
    return Identifier(load_identities(material.rules / "identities.yaml"), SECRET)
