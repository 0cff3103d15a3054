"""`VolumeProfile` and `Position.adjust_take_profit_with_volume_profile` replayed against the
golden fixtures (candles as lists; also as a DataFrame when pandas is installed)."""

from __future__ import annotations

from typing import Any

import pytest
from golden import load
from helpers_clients import run_memory_limited

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


@pytest.mark.parametrize("where", ["__len__", "__float__", "column"])
@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_while_the_candles_are_read_passes_through(
    where: str, kind: type[BaseException]
) -> None:
    # A row's own __len__ or __float__ (or a frame's column) raising KeyboardInterrupt was
    # taken for unusable data: "no profile" / False, the Ctrl+C lost (found by review).
    class Row(list[Any]):
        def __len__(self) -> int:
            raise kind("in __len__")

    class Price:  # not a float subclass: a float's own value is read without __float__
        def __float__(self) -> float:
            raise kind("in __float__")

    class Frame:
        columns = ("timestamp", "open", "high", "low", "close", "volume")

        def __getitem__(self, name: str) -> Any:
            raise kind("in the column")

    row = [1.7e12, 100.0, 101.0, 99.0, 100.0, 5.0]
    df: Any = {
        "__len__": [Row(row)] * 30,
        "__float__": [[1.7e12, Price(), 101.0, 99.0, 100.0, 5.0]] * 30,
        "column": Frame(),
    }[where]
    with pytest.raises(kind):
        VolumeProfile().calculate_volume_profile(df)
    p = Position("S", "long", 100.0, 1.0, 5, 95.0, 110.0)
    with pytest.raises(kind):
        p.adjust_take_profit_with_volume_profile(100.0, df)


ROW = [1.7e12, 100.0, 101.0, 99.0, 100.0, 5.0]
TOO_MANY = "df must have at most 1000000 candles, got more: "


def test_more_candles_than_the_limit_are_refused_naming_df() -> None:
    # One row more than the 1 000 000 a df may have (a list of one repeated row is cheap here).
    # Before, it was read in full and answered.
    rows = [ROW] * 1_000_001
    with pytest.raises(ValueError, match=TOO_MANY):
        VolumeProfile().calculate_volume_profile(rows)
    p = Position("S", "long", 100.0, 1.0, 5, 95.0, 110.0)
    with pytest.raises(ValueError, match=TOO_MANY):
        p.adjust_take_profit_with_volume_profile(100.0, rows)
    assert p.take_profit == 110.0


ENDLESS = """
import itertools
from position_manager_rs import Position, VolumeProfile
row = [1.7e12, 100.0, 101.0, 99.0, 100.0, 5.0]
class Column:
    def tolist(self): return itertools.repeat(100.0)
class Frame:
    columns = ["timestamp", "open", "high", "low", "close", "volume"]
    def __getitem__(self, key): return Column()
class HugeRow:  # claims a length no list could have
    def __len__(self): return 2**62
    def __getitem__(self, i): return 1.0
p = Position("S", "long", 100.0, 1.0, 5, 95.0, 110.0)
for call in (
    lambda: VolumeProfile().calculate_volume_profile(itertools.repeat(row)),
    lambda: VolumeProfile().calculate_volume_profile(Frame()),
    lambda: p.adjust_take_profit_with_volume_profile(100.0, itertools.repeat(row)),
    lambda: p.adjust_take_profit_with_volume_profile(100.0, Frame()),
):
    try:
        print("returned", call())
    except ValueError as e:
        print("ValueError", str(e)[:47])
print(VolumeProfile().calculate_volume_profile([HugeRow()] * 30)["poc"])
print(p.adjust_take_profit_with_volume_profile(100.0, [HugeRow()] * 30))
"""


def test_an_endless_df_is_refused_not_read_until_memory_runs_out() -> None:
    # Before: the process aborted (a failed allocation, exit status 134).
    out = run_memory_limited(ENDLESS)
    assert out.splitlines() == ["ValueError " + TOO_MANY.strip()] * 4 + ["None", "False"]
