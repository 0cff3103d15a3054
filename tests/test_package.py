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
    # Every distribution's pytest11 entry points (entry_points(group=...) is new in 3.10).
    points = [e for d in importlib.metadata.distributions() for e in d.entry_points]
    plugins = [e for e in points if e.group == "pytest11"]
    assert [e.value for e in plugins if e.name == "position_manager_rs"] == [
        "position_manager_rs.pytest_plugin"
    ]


def test_classifiers_cover_requires_python_and_the_abi3_floor() -> None:
    # abi3-py39 in Cargo.toml and requires-python >= 3.9 say the same thing.
    cargo = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    assert '"abi3-py39"' in cargo
    assert _pyproject()["project"]["requires-python"] == ">=3.9"


def test_native_classes_show_their_constructor_signature() -> None:
    """``inspect.signature`` and ``help`` name a native class's constructor arguments on every
    Python. (CPython 3.9 drops a native class's text signature, and this test failed there:
    ``ValueError: no signature found for builtin type``; 3.10+ keep it, and the record the package
    builds 3.9's signatures from must match it.)"""
    import inspect
    import pydoc

    from position_manager_rs import _core

    texts = _core._TEXT_SIGNATURES
    classes = {n: c for n, c in vars(_core).items() if isinstance(c, type)}
    assert {"Position", "PositionManager", "ManualClock", "VolumeProfile"} <= set(texts)
    for name, text in texts.items():
        cls = classes[name]
        assert str(inspect.signature(cls)) == text, name
        if sys.version_info >= (3, 10):
            assert cls.__text_signature__ == text, name
    if sys.version_info >= (3, 10):  # every class with a constructor signature is recorded
        assert {n for n, c in classes.items() if c.__text_signature__ is not None} == set(texts)
    help_text = pydoc.render_doc(_core.Position, renderer=pydoc.plaintext)  # type: ignore[attr-defined]
    # 3.13's help puts a long signature one parameter a line: compared without the layout.
    flat = re.sub(r"\s+", " ", help_text.replace(" |", " ")).replace("( ", "(").replace(" )", ")")
    assert "Position(symbol, side, entry_price, amount, leverage, stop_loss, take_profit=None)" in (
        flat
    )
    assert not hasattr(_core.ManualClock(), "__signature__")

    # A bot's subclass: its own __init__ is its signature; without one, the native class's.
    class Named(_core.Position):
        def __init__(self, *args: Any, name: str = "", **kwargs: Any) -> None:
            self.name = name

    class Plain(_core.Position):
        pass

    class Deeper(Named):
        pass

    assert list(inspect.signature(Named).parameters) == ["args", "name", "kwargs"]
    assert inspect.signature(Deeper) == inspect.signature(Named)
    assert str(inspect.signature(Plain)) == texts["Position"]


def test_class_signature_descriptor_matches_what_newer_pythons_show() -> None:
    """The 3.9 stand-in (position_manager_rs._signatures), checked on every Python: its parser
    gives 3.10+'s signatures, and on a class hierarchy it answers as 3.10+'s inspect does."""
    import inspect

    from position_manager_rs import _core, _signatures

    for name, text in _core._TEXT_SIGNATURES.items():
        assert str(_signatures.parse(text)) == text, name
    assert str(_signatures.parse("(a, /, b, c=(1, 'x'), *rest, d, e=None, **more)")) == (
        "(a, /, b, c=(1, 'x'), *rest, d, e=None, **more)"
    )

    class Base:
        pass

    signature = _signatures.parse("(x, y=2)")
    Base.__signature__ = _signatures.ClassSignature(Base, signature)  # type: ignore[attr-defined]

    class Own(Base):
        def __init__(self, z: int) -> None:
            pass

    class Inherits(Base):
        pass

    class Below(Own):
        pass

    assert inspect.signature(Base) is signature
    assert inspect.signature(Inherits) is signature
    assert list(inspect.signature(Own).parameters) == ["z"]
    assert inspect.signature(Below) == inspect.signature(Own)
    with pytest.raises(AttributeError):
        Base().__signature__  # type: ignore[attr-defined]  # noqa: B018
