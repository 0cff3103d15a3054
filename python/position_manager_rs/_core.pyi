"""Type stubs of `position_manager_rs._core` (hand-written; checked by mypy.stubtest)."""

from collections.abc import (
    AsyncGenerator,
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    ValuesView,
)
from datetime import datetime, timedelta
from os import PathLike
from typing import Any, Literal, SupportsFloat, TypeVar, final

from _typeshed import SupportsKeysAndGetItem
from typing_extensions import disjoint_base

from .events import Event
from .protocols import ExchangeClient

# on_event returns its callback (a decorator); the callback is called with an Event.
_EventCallback = TypeVar("_EventCallback", bound=Callable[[Any], object])

__version__: str
# Each native class's constructor text signature, by class name (for Python 3.9: _signatures).
_TEXT_SIGNATURES: dict[str, str]
__all__ = [
    "_TEXT_SIGNATURES",
    "AdvancedExitStrategy",
    "JournalError",
    "ManagerConfig",
    "ManualClock",
    "Position",
    "PositionManager",
    "PositionsView",
    "SmartExitOptimizer",
    "StateFileError",
    "UpdateIterator",
    "VolumeProfile",
    "_JournalReader",
    "_StepAbandoned",
    "__version__",
    "_advance_clock",
    "_after_fork_in_child",
    "_clock_is_frozen",
    "_clock_now",
    "_freeze_clock",
    "_redact_secrets",
    "_unfreeze_clock",
    "_wait_for_manager_calls",
    "format_pnl_usd",
    "format_price",
    "refresh_logging",
]

@disjoint_base
class Position:
    """An open futures position (drop-in for the original bot's `Position`)."""

    def __new__(
        cls,
        symbol: str,
        side: str,
        entry_price: SupportsFloat,
        amount: SupportsFloat,
        leverage: SupportsFloat,
        stop_loss: SupportsFloat,
        take_profit: SupportsFloat | None = None,
    ) -> Position: ...
    # What a subclass's own __init__ calls: super().__init__(symbol, side, ...).
    def __init__(
        self,
        symbol: str,
        side: str,
        entry_price: SupportsFloat,
        amount: SupportsFloat,
        leverage: SupportsFloat,
        stop_loss: SupportsFloat,
        take_profit: SupportsFloat | None = None,
    ) -> None: ...
    symbol: str
    side: str
    entry_price: float
    amount: float
    @property
    def leverage(self) -> int | float: ...
    @leverage.setter
    def leverage(self, value: float) -> None: ...
    stop_loss: float
    take_profit: float | None
    highest_price: float | None
    lowest_price: float | None
    entry_time: datetime
    trailing_stop_activated: bool
    max_favorable_excursion: float
    initial_stop_loss: float
    initial_take_profit: float | None
    last_pnl: float
    last_pnl_time: datetime
    profit_velocity: float
    breakeven_moved: bool
    profit_acceleration: float
    partial_exits_taken: int
    entry_price_estimated: bool
    def __getattr__(self, name: str) -> Any: ...
    def __setattr__(self, name: str, value: Any) -> None: ...
    def get_pnl(self, current_price: float, include_fees: object = False) -> float: ...
    def get_leveraged_pnl(self, current_price: float, include_fees: object = False) -> float: ...
    def should_close(self, current_price: float) -> tuple[bool, str]: ...
    def update_trailing_stop(
        self,
        current_price: float,
        trailing_percentage: float,
        volatility: float = 0.03,
        momentum: float = 0.0,
    ) -> None: ...
    def update_take_profit(
        self,
        current_price: float,
        momentum: float = 0.0,
        trend_strength: float = 0.5,
        volatility: float = 0.03,
        rsi: float = 50.0,
        support_resistance: Mapping[str, Any] | None = None,
    ) -> None: ...
    def move_to_breakeven(self, current_price: float, buffer: float = 0.001) -> bool: ...
    def adjust_take_profit_with_volume_profile(self, current_price: float, df: Any) -> bool: ...
    volume_profile_analyzer: Any
    def calculate_intelligent_targets(
        self, current_price: float, support_resistance: Mapping[str, Any] | None, side: str
    ) -> tuple[float, float]: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    def __setstate__(self, state: Any, /) -> None: ...
    contract_size: float
    @property
    def history(self) -> list[tuple[datetime, float, float, float | None]]: ...
    def plot(self, ax: Any = None) -> Any: ...
    def _repr_html_(self) -> str: ...

class JournalError(OSError):
    """A journal that cannot be opened, created, migrated or read."""

@final
class _JournalReader:
    def __new__(cls, url: str | PathLike[str] | PathLike[bytes] | bytes) -> _JournalReader: ...
    @property
    def url(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    def _begin_snapshot(self) -> None: ...
    def _end_snapshot(self) -> None: ...
    def close(self) -> None: ...
    def accounts(self) -> list[dict[str, Any]]: ...
    def events(
        self,
        account: str | None = None,
        symbol: str | None = None,
        kinds: list[str] | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]: ...
    def closed_positions(
        self,
        account: str | None = None,
        symbol: str | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]: ...
    def open_positions(self, account: str | None = None) -> list[dict[str, Any]]: ...
    def reopen_holds(self, account: str | None = None) -> list[dict[str, Any]]: ...
    def tombstones(self, account: str | None = None) -> list[dict[str, Any]]: ...
    def closing_positions(self, account: str | None = None) -> list[dict[str, Any]]: ...
    def orders_in_flight(self, account: str | None = None) -> list[dict[str, Any]]: ...

class StateFileError(ValueError):
    """A state file that cannot be loaded, or a state that cannot be saved."""

class _StepAbandoned(BaseException):
    """Ends an update step its caller gave up on (the asyncio API drops it)."""

@final
class PositionsView:
    """Live, thread-safe mapping {symbol: Position} of the tracked positions."""

    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __getitem__(self, key: str, /) -> Position: ...
    def __setitem__(self, key: str, value: Position, /) -> None: ...
    def __delitem__(self, key: str, /) -> None: ...
    def __iter__(self) -> Iterator[str]: ...
    def __bool__(self) -> bool: ...
    def keys(self) -> KeysView[str]: ...
    def values(self) -> ValuesView[Position]: ...
    def items(self) -> ItemsView[str, Position]: ...
    def get(self, key: object, default: Any = None) -> Any: ...
    def pop(self, key: object, *default: Any) -> Any: ...
    def popitem(self) -> tuple[str, Position]: ...
    def clear(self) -> None: ...
    def update(
        self,
        other: SupportsKeysAndGetItem[str, Position] | Iterable[tuple[str, Position]] | None = None,
        **kwargs: Position,
    ) -> None: ...
    def setdefault(self, key: str, default: Position | None = None) -> Position: ...
    def copy(self) -> dict[str, Position]: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class UpdateIterator:
    """One lazy update cycle; yields (symbol, pnl, position) for each closed position."""

    def __iter__(self) -> UpdateIterator: ...
    def __next__(self) -> tuple[str, float, Position]: ...
    def close(self) -> None: ...
    def _abandon(self) -> None: ...

@disjoint_base
class PositionManager:
    """Thread-safe manager of a bot's open futures positions (drop-in for the original)."""

    def __new__(
        cls,
        client: ExchangeClient,
        trailing_stop_percentage: float | None = 0.02,
        *,
        missing_confirmations: int = 1,
        ticker_retry_delays: Iterable[float] = (0.5, 1.0),
        snapshot_reuse_seconds: float = 5.0,
        max_concurrent_calls: int = 1,
        logger_name: str = "TradingBot",
        position_logger_name: str = "TradingBot.Position",
        order_logger_name: str = "TradingBot.Order",
        event_history: int = 10000,
        tombstone_limit: int = 1000,
        advanced_exit_strategy: Any = None,
        smart_exit_optimizer: Any = None,
        missing_grace_seconds: float = 0.0,
        tombstone_ttl_seconds: float | None = 86400.0,
        reopen_hold_seconds: float = 0.0,
        outcome_confirmations: int = 2,
        outcome_grace_seconds: float = 0.0,
        history_points: int = 32,
        clock: ManualClock | None = None,
        position_mode: Literal["oneway", "hedge"] = "oneway",
        journal: str | PathLike[str] | PathLike[bytes] | bytes | None = None,
        account: str | None = None,
        journal_sync: Literal["full", "normal", "off"] | None = None,
    ) -> PositionManager: ...
    @property
    def journal_status(self) -> dict[str, Any] | None: ...
    def journal_position(self, symbol: str) -> bool: ...
    def journal_checkpoint(self) -> bool: ...
    @property
    def advanced_exit_strategy(self) -> Any: ...
    @advanced_exit_strategy.setter
    def advanced_exit_strategy(self, value: Any) -> None: ...
    @property
    def smart_exit_optimizer(self) -> Any: ...
    @smart_exit_optimizer.setter
    def smart_exit_optimizer(self, value: Any) -> None: ...
    client: ExchangeClient
    @property
    def clock(self) -> ManualClock | None: ...
    trailing_stop_percentage: float
    @property
    def positions(self) -> PositionsView: ...
    @positions.setter
    def positions(
        self, value: SupportsKeysAndGetItem[str, Position] | Iterable[tuple[str, Position]]
    ) -> None: ...
    @property
    def logger(self) -> Any: ...
    @property
    def position_logger(self) -> Any: ...
    @property
    def _positions_lock(self) -> Any: ...
    @property
    def events(self) -> list[Event]: ...
    def events_since(self, seq: int) -> list[Event]: ...
    @property
    def event_count(self) -> int: ...
    @property
    def config(self) -> ManagerConfig: ...
    def get_open_positions_count(self) -> int: ...
    def get_position(self, symbol: str) -> Position | None: ...
    def get_all_positions(self) -> dict[str, Position]: ...
    def has_position(self, symbol: str) -> bool: ...
    def validate_position_parameters(
        self, symbol: str, amount: float, leverage: float, stop_loss_percentage: float
    ) -> tuple[bool, str]: ...
    def update_positions(self) -> UpdateIterator: ...
    def close_position(self, symbol: str, reason: str = "manual") -> float | None: ...
    def sync_existing_positions(self) -> int: ...
    def reconcile_positions(self) -> int: ...
    def save_state(self, path: str | bytes | PathLike[str] | PathLike[bytes]) -> int: ...
    def load_state(self, path: str | bytes | PathLike[str] | PathLike[bytes]) -> int: ...
    def on_event(self, callback: _EventCallback) -> _EventCallback: ...
    def off_event(self, callback: Callable[..., object]) -> bool: ...
    def to_records(self) -> list[dict[str, Any]]: ...
    def to_pandas(self) -> Any: ...
    def _repr_html_(self) -> str: ...
    def open_position(
        self,
        symbol: str,
        signal: str,
        amount: float,
        leverage: float,
        stop_loss_percentage: float = 0.05,
        use_limit: bool = False,
        limit_offset: float = 0.001,
    ) -> bool: ...
    def scale_in_position(
        self, symbol: str, additional_amount: float, current_price: float
    ) -> bool: ...
    def scale_out_position(
        self, symbol: str, amount_to_close: float, reason: str = "scale_out"
    ) -> float | None: ...
    def modify_position_targets(
        self, symbol: str, new_stop_loss: float | None = None, new_take_profit: float | None = None
    ) -> bool: ...
    def safe_update_position_targets(
        self,
        symbol: str,
        new_stop_loss: float | None = None,
        new_take_profit: float | None = None,
        reason: str = "manual",
    ) -> bool: ...
    # asyncio (position_manager_rs.aio, installed by the package): the methods above in a
    # worker thread.
    def aupdate_positions(self) -> AsyncGenerator[tuple[str, float, Position]]: ...
    async def aopen_position(
        self,
        symbol: str,
        signal: str,
        amount: float,
        leverage: float,
        stop_loss_percentage: float = 0.05,
        use_limit: bool = False,
        limit_offset: float = 0.001,
    ) -> bool: ...
    async def aclose_position(self, symbol: str, reason: str = "manual") -> float | None: ...
    async def ascale_in_position(
        self, symbol: str, additional_amount: float, current_price: float
    ) -> bool: ...
    async def ascale_out_position(
        self, symbol: str, amount_to_close: float, reason: str = "scale_out"
    ) -> float | None: ...
    async def async_existing_positions(self) -> int: ...
    async def areconcile_positions(self) -> int: ...

@final
class ManualClock:
    """A clock that moves only when told: a manager's own (paper) time."""

    def __new__(cls, start: datetime | None = None) -> ManualClock: ...
    def now(self) -> datetime: ...
    def set(self, at: datetime) -> None: ...
    def advance(
        self,
        seconds: float | None = None,
        *,
        minutes: float | None = None,
        hours: float | None = None,
        delta: timedelta | None = None,
    ) -> datetime: ...

def format_price(price: float) -> str: ...
def format_pnl_usd(pnl_usd: float) -> str: ...
def refresh_logging() -> None: ...
def _freeze_clock(at: datetime) -> None: ...
def _advance_clock(
    seconds: float | None = None,
    *,
    minutes: float | None = None,
    hours: float | None = None,
    delta: timedelta | None = None,
) -> datetime: ...
def _unfreeze_clock() -> None: ...
def _clock_now() -> datetime: ...
def _clock_is_frozen() -> bool: ...
def _redact_secrets(text: str) -> str:
    """``text`` with every credential's value (API key, signature, secret, passphrase, token,
    ...) replaced by ``***``; the exchange's error texts go through it before they are logged."""

def _wait_for_manager_calls() -> None:
    """The package's ``atexit`` callback (registered at import): waits until no other thread is
    inside a manager call (at most 30 s; Ctrl+C ends the wait)."""

def _after_fork_in_child() -> None:
    """The package's ``os.register_at_fork(after_in_child=...)`` hook (registered at import):
    in a forked child, makes the managers, iterators and journal readers created before the
    fork refuse to be used (``RuntimeError``), forgets the parent's manager calls in progress
    and closes the inherited descriptors of the parent's save directory locks."""

@final
class ManagerConfig:
    """The options a PositionManager was built with (read-only; `manager.config`)."""

    @property
    def trailing_stop_percentage(self) -> float: ...
    @property
    def missing_confirmations(self) -> int: ...
    @property
    def ticker_retry_delays(self) -> tuple[float, ...]: ...
    @property
    def snapshot_reuse_seconds(self) -> float: ...
    @property
    def max_concurrent_calls(self) -> int: ...
    @property
    def logger_name(self) -> str: ...
    @property
    def position_logger_name(self) -> str: ...
    @property
    def order_logger_name(self) -> str: ...
    @property
    def event_history(self) -> int: ...
    @property
    def tombstone_limit(self) -> int: ...
    @property
    def missing_grace_seconds(self) -> float: ...
    @property
    def tombstone_ttl_seconds(self) -> float | None: ...
    @property
    def history_points(self) -> int: ...
    @property
    def position_mode(self) -> Literal["oneway", "hedge"]: ...
    @property
    def reopen_hold_seconds(self) -> float: ...
    @property
    def outcome_confirmations(self) -> int: ...
    @property
    def outcome_grace_seconds(self) -> float: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class VolumeProfile:
    """The original's volume-profile analyzer (POC, value area, high-volume nodes)."""

    def __new__(cls) -> VolumeProfile: ...
    def calculate_volume_profile(self, df: Any, num_bins: int = 50) -> dict[str, Any]: ...
    def get_support_resistance_from_volume(
        self, current_price: float, volume_profile: Mapping[str, Any] | None
    ) -> dict[str, Any]: ...

class AdvancedExitStrategy:
    """The original's advanced exit rules (breakeven+, time, volatility, momentum reversal,
    profit lock, profit scaling), run in Rust."""

    def __new__(cls, *args: Any, **kwargs: Any) -> AdvancedExitStrategy: ...
    def get_comprehensive_exit_signal(
        self, position_data: Mapping[str, Any], market_data: Mapping[str, Any]
    ) -> tuple[bool, str, float | None]: ...

class SmartExitOptimizer:
    """The original's early-exit score (`should_exit_early`), run in Rust."""

    def __new__(cls, *args: Any, **kwargs: Any) -> SmartExitOptimizer: ...
    def should_exit_early(
        self,
        position_pnl: float,
        position_duration_minutes: float,
        current_momentum: float,
        current_rsi: float,
        volatility: float,
        volume_ratio: float,
        trend_weakening: bool,
        *,
        side: str | None = None,
    ) -> dict[str, Any]: ...
