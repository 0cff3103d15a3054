"""Port of the bot's ``test_fee_accounting.py`` (unittest ``TestFeeAccounting``, 6 tests).

``get_pnl`` / ``get_leveraged_pnl`` with ``include_fees=True`` subtract the 0.12 % round-trip taker
fee from the unleveraged P/L *before* leverage is applied. The original compared with
``assertAlmostEqual(places=4)`` (``places=3`` for break-even); the tolerances below match.
"""

from __future__ import annotations

import pytest

FEE = 0.0012
PLACES_4 = 0.5e-4
PLACES_3 = 0.5e-3


@pytest.fixture
def long_5x(make_position):
    """Long 0.1 BTC at 50000, 5x, SL 49000, TP 51000."""
    return make_position(
        entry_price=50000, amount=0.1, leverage=5, stop_loss=49000, take_profit=51000
    )


def test_pnl_without_fees(long_5x):
    """+2 % price move: 2 % unleveraged, 10 % at 5x."""
    assert long_5x.get_pnl(51000, include_fees=False) == pytest.approx(0.02, abs=PLACES_4)
    assert long_5x.get_leveraged_pnl(51000, include_fees=False) == pytest.approx(0.10, abs=PLACES_4)


def test_pnl_with_fees(long_5x):
    """+2 % price move with fees: 1.88 % unleveraged, 9.4 % at 5x."""
    expected_base = 0.02 - FEE
    assert long_5x.get_pnl(51000, include_fees=True) == pytest.approx(expected_base, abs=PLACES_4)
    assert long_5x.get_leveraged_pnl(51000, include_fees=True) == pytest.approx(
        expected_base * 5, abs=PLACES_4
    )


def test_small_profit_becomes_loss_with_fees(long_5x):
    """+0.1 % price move: +0.5 % ROI without fees, a loss once the 0.12 % fee is charged."""
    assert long_5x.get_leveraged_pnl(50050, include_fees=False) > 0
    assert long_5x.get_leveraged_pnl(50050, include_fees=True) < 0


def test_short_position_with_fees(make_position):
    """Short at 50000, price falls 2 %: 1.88 % unleveraged and 9.4 % at 5x after fees."""
    position = make_position(
        side="short", entry_price=50000, amount=0.1, leverage=5, stop_loss=51000, take_profit=49000
    )
    expected_base = 0.02 - FEE
    assert position.get_pnl(49000, include_fees=True) == pytest.approx(expected_base, abs=PLACES_4)
    assert position.get_leveraged_pnl(49000, include_fees=True) == pytest.approx(
        expected_base * 5, abs=PLACES_4
    )


def test_breakeven_calculation(long_5x):
    """A 0.12 % price gain exactly pays the fees: ROI after fees ≈ 0."""
    breakeven_price = 50000 * (1 + FEE)
    assert long_5x.get_leveraged_pnl(breakeven_price, include_fees=True) == pytest.approx(
        0.0, abs=PLACES_3
    )


@pytest.mark.parametrize(
    ("leverage", "expected_fee_impact"),
    [(2, 0.0024), (5, 0.006), (10, 0.012)],
)
def test_fee_impact_varies_with_leverage(make_position, leverage, expected_fee_impact):
    """The fee costs 0.12 % × leverage in ROI terms."""
    position = make_position(
        entry_price=50000, amount=0.1, leverage=leverage, stop_loss=49000, take_profit=51000
    )
    exit_price = 50000 * 1.02
    fee_impact = position.get_leveraged_pnl(exit_price) - position.get_leveraged_pnl(
        exit_price, include_fees=True
    )
    assert fee_impact == pytest.approx(expected_fee_impact, abs=PLACES_4)
