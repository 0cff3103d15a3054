"""position_manager_rs: a drop-in, Rust-powered PositionManager for crypto-futures trading bots.

Replace the bot's import with::

    from position_manager_rs import PositionManager, Position

The manager keeps the bot's open positions in a thread-safe book, drops positions the exchange no
longer reports (never on a failed or malformed answer), moves trailing stops and take profits, and
closes positions through the bot's own exchange client.
"""

from collections.abc import MutableMapping

from ._core import (
    AdvancedExitStrategy,
    JournalError,
    ManagerConfig,
    ManualClock,
    Position,
    PositionManager,
    PositionsView,
    SmartExitOptimizer,
    StateFileError,
    UpdateIterator,
    VolumeProfile,
    __version__,
    format_pnl_usd,
    format_price,
    refresh_logging,
)
from ._signatures import install as _install_signatures
from .aio import MANAGER_METHODS as _ASYNC_METHODS
from .ccxt_client import CcxtClient
from .journal import Journal
from .paper import PaperExchange, PaperExchangeError
from .protocols import DuplicateClientOrderId, ExchangeClient, TradingClient

MutableMapping.register(PositionsView)

# Python 3.9: the native classes' constructor signatures, for inspect.signature and help()
# (3.9 drops them from a native class's docstring; see position_manager_rs._signatures).
_install_signatures()
del _install_signatures

# asyncio: the manager's a-methods (aupdate_positions, aopen_position, ...) are Python functions
# running the synchronous ones in worker threads (position_manager_rs.aio).
for _name, _method in _ASYNC_METHODS.items():
    setattr(PositionManager, _name, _method)
del _name, _method

__all__ = [
    "AdvancedExitStrategy",
    "CcxtClient",
    "DuplicateClientOrderId",
    "ExchangeClient",
    "Journal",
    "JournalError",
    "ManagerConfig",
    "ManualClock",
    "PaperExchange",
    "PaperExchangeError",
    "Position",
    "PositionManager",
    "PositionsView",
    "SmartExitOptimizer",
    "StateFileError",
    "TradingClient",
    "UpdateIterator",
    "VolumeProfile",
    "__version__",
    "format_pnl_usd",
    "format_price",
    "refresh_logging",
]
