from __future__ import annotations

from pathlib import Path

import pytest

# Public SailPoint ISC connector specs, copied unchanged (see its README.md); one is broken on purpose.
ISC_SPECS = Path(__file__).resolve().parent / "data" / "isc-connector-specs"


@pytest.fixture
def isc_specs_dir() -> Path:
    assert ISC_SPECS.is_dir(), f"ISC spec corpus missing at {ISC_SPECS}"
    return ISC_SPECS
