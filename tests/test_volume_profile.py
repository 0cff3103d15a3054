"""`VolumeProfile` and `Position.adjust_take_profit_with_volume_profile` replayed against the
golden fixtures (candles as lists; also as a DataFrame when pandas is installed)."""

from __future__ import annotations

from typing import Any

import pytest
from golden import load

from position_manager_rs import Position
from position_manager_rs._core import VolumeProfile

ADJUST: list[dict[str, Any]] = load("position_traces.json")[
    "adjust_take_profit_with_volume_profile"
]
SERIES: list[dict[str, Any]] = load("indicators.json")["cases"]
RAW = [c for c in SERIES if "volume_profile_raw" in c]


@pytest.mark.parametrize("case", ADJUST, ids=[f"adjust{i}" for i in range(len(ADJUST))])
def test_adjust_take_profit_with_volume_profile(case: dict[str, Any]) -> None:
    p = Position(
        "S",
        case["side"],
        case["entry_price"],
        case["amount"],
        case["leverage"],
        case["stop_loss"],
        case["take_profit"],
    )
    assert (
        p.adjust_take_profit_with_volume_profile(case["current_price"], case["ohlcv"])
        is (case["result"])
    )
    assert p.take_profit == case["take_profit_after"]


def test_adjust_accepts_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    changed = [c for c in ADJUST if c["result"]]
    assert changed, "the fixture has cases that move the take profit"
    case = changed[0]
    df = pd.DataFrame(
        case["ohlcv"], columns=["timestamp", "open", "high", "low", "close", "volume"]
    )
    p = Position(
        "S", case["side"], case["entry_price"], 1.0, 5, case["stop_loss"], case["take_profit"]
    )
    assert p.adjust_take_profit_with_volume_profile(case["current_price"], df) is True
    assert p.take_profit == case["take_profit_after"]


@pytest.mark.parametrize("case", RAW, ids=[c["name"] for c in RAW])
def test_volume_profile_of_short_series(case: dict[str, Any]) -> None:
    assert VolumeProfile().calculate_volume_profile(case["ohlcv"]) == case["volume_profile_raw"]


def test_support_resistance_from_a_profile() -> None:
    full = [c for c in SERIES if c["volume_profile"].get("poc") is not None]
    assert full
    vp = VolumeProfile()
    for case in full:
        for price, expected in case["volume_sr_probes"]:
            got = vp.get_support_resistance_from_volume(price, case["volume_profile"])
            assert got == expected, (case["name"], price)


def test_unusable_data_gives_no_profile() -> None:
    assert VolumeProfile().calculate_volume_profile([[0, "x", 1, 1, 1, 1]] * 30) == {
        "poc": None,
        "vah": None,
        "val": None,
        "volume_nodes": [],
    }
    p = Position("S", "long", 100.0, 1.0, 5, 95.0, 110.0)
    assert p.adjust_take_profit_with_volume_profile(100.0, [[1, 2, 3]]) is False
    assert Position.volume_profile_analyzer.get_support_resistance_from_volume(1.0, None) == {
        "support": None,
        "resistance": None,
        "strength": 0.0,
    }
