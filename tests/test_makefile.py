"""The Makefile's promises to a first-time user: ``make demo`` checks for cargo before anything
else and installs only the build tool; the dev tools are the ``dev`` extra of pyproject.toml."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

# A make started by `make test` passes its flags down through the environment: not to these.
ENV = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}


def variable(name: str) -> list[str]:
    match = re.search(rf"^{name} := (.*)$", MAKEFILE, re.M)
    assert match, name
    return shlex.split(match.group(1))


def dry_run(target: str, venv: Path) -> list[str]:
    """The commands ``make -n target`` would run for a virtualenv that does not exist yet."""
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), target, f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        check=True,
    )
    return result.stdout.splitlines()


def installed_packages(commands: list[str]) -> set[str]:
    """The package names the ``pip install`` commands among ``commands`` install."""
    names: set[str] = set()
    for command in commands:
        if " -m pip install " not in command:
            continue
        words = shlex.split(command)
        if words[1:4] == ["-m", "pip", "install"]:
            names.update(re.split(r"[<>=]", w)[0] for w in words[4:] if not w.startswith("-"))
    return names


def test_dev_tools_are_the_dev_extra() -> None:
    if sys.version_info < (3, 11):  # pragma: no cover
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    assert sorted(variable("DEV_TOOLS")) == sorted(extras["dev"])


def test_demo_checks_cargo_first_and_installs_only_the_build_tool(tmp_path: Path) -> None:
    commands = dry_run("demo", tmp_path / "venv")
    assert "command -v cargo" in commands[0], commands[:3]
    installed = installed_packages(commands)
    assert "maturin" in installed, commands
    dev = {re.split(r"[<>=]", tool)[0] for tool in variable("DEV_TOOLS")}
    assert installed & dev == set(), f"make demo installs {installed & dev}"
    # and test does install them
    assert dev <= installed_packages(dry_run("test", tmp_path / "venv"))


def test_without_cargo_make_demo_stops_at_once_with_a_clear_message(tmp_path: Path) -> None:
    path = os.pathsep.join(
        d for d in ENV.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "cargo").exists()
    )
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "demo", f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV, "PATH": path},
        check=False,
    )
    assert result.returncode != 0
    assert "needs Rust's cargo, and it is not on PATH" in result.stderr
    assert "https://rustup.rs" in result.stderr
    assert not venv.exists(), "nothing is installed before the check"


def test_the_wheel_target_builds_a_portable_stripped_abi3_wheel() -> None:
    recipe = MAKEFILE[MAKEFILE.index("\nwheel:") :]
    recipe = recipe[: recipe.index("\n\n")]
    for flag in ("--release", "--zig", "--compatibility manylinux2014", "--strip"):
        assert flag in recipe, flag
    assert "ziglang" in " ".join(variable("WHEEL_TOOLS"))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.index("make test") < ci.index("make wheel") < ci.index("make wheel-smoke")


def pins() -> dict[str, str]:
    """``.ci/constraints.txt`` as {normalized name: exact version}."""
    found: dict[str, str] = {}
    for line in (ROOT / ".ci" / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"not an exact pin: {line!r}"
            found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def test_every_tool_make_installs_is_pinned_within_its_range() -> None:
    from packaging.requirements import Requirement

    pinned = pins()
    for tool in variable("BUILD_TOOLS") + variable("DEV_TOOLS") + variable("WHEEL_TOOLS") + ["pip"]:
        requirement = Requirement(tool)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pinned, f"{tool} is not in .ci/constraints.txt"
        assert requirement.specifier.contains(pinned[name]), f"{tool}: pinned {pinned[name]}"


def test_pip_installs_read_the_constraints_unless_unpinned() -> None:
    def constraint(*flags: str) -> str:
        result = subprocess.run(
            ["make", "-s", "--no-print-directory", "-C", str(ROOT), *flags, "print-constraint"],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in ENV.items() if k != "PIP_CONSTRAINT"},
            check=True,
        )
        return result.stdout.strip()

    assert constraint() == str(ROOT / ".ci" / "constraints.txt")
    assert constraint("UNPINNED=1") == ""
