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


def test_every_public_native_name_is_exported() -> None:
    # What the native module offers (its stub's __all__, checked against it by stubtest) is
    # importable from the package itself, as the README and docs/differences.md use it.
    from position_manager_rs import _core

    public = {n for n in _core.__all__ if not n.startswith("_")}
    assert public <= set(position_manager_rs.__all__), public - set(position_manager_rs.__all__)


def test_names_the_docs_import_exist() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    imported: set[str] = set()
    for path in docs:
        text = path.read_text(encoding="utf-8")
        for names in re.findall(r"from position_manager_rs import ([\w, ]+)", text):
            imported.update(n.strip() for n in names.split(","))
        imported.update(re.findall(r"position_manager_rs\.([A-Z]\w+)", text))
    assert "PositionManager" in imported, "the docs no longer import anything?"
    missing = sorted(n for n in imported if not hasattr(position_manager_rs, n))
    assert missing == []
