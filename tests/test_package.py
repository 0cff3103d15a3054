"""Packaging facts: version, typing marker, public names."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path
from typing import Any

import pytest

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


def _pyproject() -> dict[str, Any]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(text)
    pytest.skip("tomllib needs Python 3.11")  # pragma: no cover


def test_license_file_and_spdx_expression() -> None:
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License\n")
    project = _pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    cargo = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    assert re.search(r'^license = "MIT"$', cargo, re.M)


def test_installed_metadata_is_complete() -> None:
    md = importlib.metadata.metadata("position-manager-rs")
    assert md["License-Expression"] == "MIT"
    assert md.get_all("License-File") == ["LICENSE"]
    assert md["Requires-Python"] == ">=3.9"
    classifiers = set(md.get_all("Classifier") or [])
    for minor in range(9, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert {"Typing :: Typed", "Framework :: Pytest", "Programming Language :: Rust"} <= classifiers
    assert not any(c.startswith("License ::") for c in classifiers), "SPDX expression only"
    urls = dict(u.split(", ", 1) for u in md.get_all("Project-URL") or [])
    assert {"Homepage", "Repository", "Documentation", "Issues"} <= set(urls)
    cargo = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    repository = re.search(r'^repository = "([^"]+)"$', cargo, re.M)
    assert repository and urls["Repository"] == repository.group(1)
    plugins = importlib.metadata.entry_points(group="pytest11")
    assert [e.value for e in plugins if e.name == "position_manager_rs"] == [
        "position_manager_rs.pytest_plugin"
    ]


def test_classifiers_cover_requires_python_and_the_abi3_floor() -> None:
    # abi3-py39 in Cargo.toml and requires-python >= 3.9 say the same thing.
    cargo = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    assert '"abi3-py39"' in cargo
    assert _pyproject()["project"]["requires-python"] == ">=3.9"
