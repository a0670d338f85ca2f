from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ISC_SPECS = REPO / ".." / "shared" / "testdata" / "isc-connector-specs"


@pytest.fixture
def isc_specs_dir() -> Path:
    if not ISC_SPECS.is_dir():
        pytest.skip(f"ISC spec corpus not found at {ISC_SPECS}")
    return ISC_SPECS
