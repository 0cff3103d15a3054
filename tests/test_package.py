"""Packaging facts: version, typing marker, public names."""

from __future__ import annotations

import re
from pathlib import Path

import position_manager_rs

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_the_cargo_version() -> None:
    cargo = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    version = re.search(r'^\[workspace\.package\]\nversion = "([^"]+)"', cargo, flags=re.M)
    assert version, "workspace version not found in Cargo.toml"
    assert position_manager_rs.__version__ == version.group(1)


def test_typed_package_ships_its_stubs() -> None:
    package = Path(position_manager_rs.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "_core.pyi").is_file()


def test_public_names() -> None:
    for name in position_manager_rs.__all__:
        assert hasattr(position_manager_rs, name), name
    assert {"Position", "PositionManager", "format_price", "format_pnl_usd"} <= set(
        position_manager_rs.__all__
    )
