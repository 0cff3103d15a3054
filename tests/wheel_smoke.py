"""Smoke test of an installed wheel (run by .ci/wheel-smoke, outside pytest, with no Rust on PATH).

Usage: ``python tests/wheel_smoke.py DEMO_OUTPUT``. Checks that the package comes from the
virtualenv's site-packages (not a source tree), that its native module, stubs and pytest plugin
entry point are there, that a paper-trading manager works end to end in paper time, and that the
demo's output (the file given) ended with both realized totals.
"""

from __future__ import annotations

import importlib.metadata
import sys
import sysconfig
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any


def main(demo_output: str) -> int:
    import position_manager_rs as pm
    from position_manager_rs import _core

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    package = Path(pm.__file__).resolve().parent
    assert package.parent == site, f"imported from {package}, not from {site}"
    assert Path(_core.__file__).name == "_core.abi3.so", _core.__file__
    assert (package / "_core.pyi").is_file() and (package / "py.typed").is_file()
    assert pm.__version__ == importlib.metadata.version("position-manager-rs")
    points: Any = importlib.metadata.entry_points()
    # Python 3.9 answers a dict of groups; 3.10+ can select.
    plugins = points.select(group="pytest11") if hasattr(points, "select") else points["pytest11"]
    assert any(e.value == "position_manager_rs.pytest_plugin" for e in plugins)

    paper = pm.PaperExchange(seed=2, volatility=0.0, tick_seconds=3600)
    manager = pm.PositionManager(paper, 0.02, ticker_retry_delays=(), clock=paper.clock)
    assert manager.open_position("BTC/USDT:USDT", "BUY", 10, 5, 0.03)
    assert manager.positions["BTC/USDT:USDT"].entry_time == datetime(2026, 1, 1)
    assert list(manager.update_positions()) == []  # the exchange lists it
    paper.close_externally("BTC/USDT:USDT")
    assert list(manager.update_positions()) == []
    assert manager.events[-1]["reason"] == "closed_externally"
    assert manager.open_position("ETH/USDT:USDT", "SELL", 10, 5, 0.03)
    paper.advance(25)
    closed = [symbol for symbol, _, _ in manager.update_positions()]
    assert closed == ["ETH/USDT:USDT"], closed
    assert manager.events[-1]["time"] == datetime(2026, 1, 1) + timedelta(hours=25)
    assert pm.format_price(1234.5678) == "1234.57"

    text = Path(demo_output).read_text(encoding="utf-8")
    assert "Realized P/L (USDT)" in text and "  venue " in text, text[-500:]
    python = sys.version.split()[0]
    print(f"smoke: position_manager_rs {pm.__version__} from {package} on Python {python}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
