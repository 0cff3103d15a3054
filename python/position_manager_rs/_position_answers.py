"""What a venue's position-list answer says, read from the venue's own fields.

``CcxtClient`` reads positions through ccxt's ``fetch_positions``, whose parsers turn a
malformed answer into something that looks well-formed: a null, missing, empty or boolean size
becomes ``contracts=None`` (read as a flat placeholder), a missing side field becomes ``None``
or, on HTX and MEXC, ``'short'``, and an answer that is not a position list at all (an HTML
page with status 200, an empty body, ``data: null``, another endpoint's JSON) becomes ``[]``.
This module holds what the client needs to tell those apart:

- ``RAW_SIZE_FIELDS``: per venue, the size field of the venue's own entry (the entry ccxt keeps
  as ``info``), as ccxt 4.5.90's ``parse_position`` reads it; an entry is flat only when that
  field reads 0.
- ``VENUE_LEGS``: venues whose ccxt parser gives a side by default (HTX and MEXC: ``'short'``
  when their field is absent); their leg is read from their own fields instead.
- ``position_container``: where each venue's answer holds its list of positions.
- ``record_answers`` / ``recording``: the HTTP requests a call made on the calling thread (or
  in the asyncio task the call was submitted to), each with its decoded answer (``Heard``),
  so the client can look at what ccxt parsed.
- ``POSITION_ENDPOINTS`` / ``position_answer``: which of those requests asked the venue for
  its list of positions, by endpoint (the request's method and path; Hyperliquid's body).

Facts about the venues and about ccxt's parsers come from ccxt's sources (ccxt 4.5.90) and the
venues' API references; nothing here is ccxt's code.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import math
import numbers
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import urlsplit

#: Per ccxt exchange id: the size field(s) of the venue's own entry in its list of open
#: positions, each a path of keys inside it, in the order ccxt's ``parse_position`` looks for
#: them (the first present and not ``None``/``''`` is the size). Read in ccxt 4.5.90's parsers
#: and the answers they quote: Binance ``positionRisk`` and account entries ``positionAmt``;
#: Bybit ``size``; OKX ``pos``; Bitget ``total`` (base coin, ccxt divides by the contract
#: size); Gate ``size``; KuCoin ``currentQty`` (classic) then ``size`` (unified account); MEXC
#: ``holdVol``; HTX ``volume``; BingX ``positionAmt``; Hyperliquid ``szi`` inside ``position``.
#: The parsers' other size fields belong to position histories (Bybit ``qty``, Bitget
#: ``openTotalPos``, Gate ``accum_size``), never to a list of open positions: an answer whose
#: entries carry only those (Bybit's order list has ``qty``) is not one.
RAW_SIZE_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "binance": (("positionAmt",),),
    "binanceusdm": (("positionAmt",),),
    "binancecoinm": (("positionAmt",),),
    "bybit": (("size",),),
    "okx": (("pos",),),
    "bitget": (("total",),),
    "gate": (("size",),),
    "gateio": (("size",),),
    "kucoinfutures": (("currentQty",), ("size",)),
    "kucoin": (("currentQty",), ("size",)),
    "mexc": (("holdVol",),),
    "htx": (("volume",),),
    "huobi": (("volume",),),
    "bingx": (("positionAmt",),),
    "hyperliquid": (("position", "szi"),),
}

_HTX_LEGS: tuple[tuple[str, dict[str, str]], ...] = (
    # v5 hedge mode names the leg; one-way ("both") and the v1 APIs name it in direction only.
    ("position_side", {"long": "long", "short": "short"}),
    ("direction", {"buy": "long", "sell": "short"}),
)
#: Venues whose ccxt parser gives a side even when the venue's entry names none (HTX:
#: ``'short'`` unless ``direction`` is ``'buy'``; MEXC: ``'short'`` unless ``positionType`` is
#: 1): their leg is read from these fields of the venue's entry, in order, and ccxt's ``side``
#: is not used.
VENUE_LEGS: dict[str, tuple[tuple[str, dict[str, str]], ...]] = {
    "htx": _HTX_LEGS,
    "huobi": _HTX_LEGS,
    "mexc": (("positionType", {"1": "long", "2": "short"}),),
}

#: The fields a venue names an entry's leg with, for the warning about an entry whose side
#: cannot be read (what ccxt's parsers read it from).
SIDE_FIELDS: dict[str, tuple[str, ...]] = {
    "binance": ("positionSide", "positionAmt", "notional"),
    "binanceusdm": ("positionSide", "positionAmt", "notional"),
    "binancecoinm": ("positionSide", "positionAmt", "notional"),
    "bybit": ("positionIdx", "side"),
    "okx": ("posSide", "pos"),
    "bitget": ("holdSide",),
    "gate": ("mode", "side", "size"),
    "gateio": ("mode", "side", "size"),
    "kucoinfutures": ("side", "currentQty"),
    "kucoin": ("side", "currentQty"),
    "mexc": ("positionType",),
    "htx": ("position_side", "direction"),
    "huobi": ("position_side", "direction"),
    "bingx": ("positionSide",),
    "hyperliquid": ("szi",),
}

#: Per venue, where its own entry names the market (the id ccxt maps to a unified symbol
#: through its loaded markets), as ccxt 4.5.90's ``parse_position`` reads it.
MARKET_ID_FIELDS: dict[str, tuple[str, ...]] = {
    "binance": ("symbol",),
    "binanceusdm": ("symbol",),
    "binancecoinm": ("symbol",),
    "bybit": ("symbol",),
    "okx": ("instId",),
    "bitget": ("symbol",),
    "gate": ("contract",),
    "gateio": ("contract",),
    "kucoinfutures": ("symbol",),
    "kucoin": ("symbol",),
    "mexc": ("symbol",),
    "htx": ("contract_code",),
    "huobi": ("contract_code",),
    "bingx": ("symbol",),
    "hyperliquid": ("position", "coin"),
}

#: Fields every position entry of a venue carries besides its size, where the venue's other
#: answers have the size field too: MEXC's tickers carry ``holdVol`` (its open interest),
#: Gate's and KuCoin's orders ``size``; their position entries carry these, those answers not.
ENTRY_MARKS: dict[str, tuple[str, ...]] = {
    "mexc": ("positionId",),
    "gate": ("entry_price",),
    "gateio": ("entry_price",),
    "kucoinfutures": ("markPrice",),
    "kucoin": ("markPrice",),
}

_MISSING = object()


def _at(entry: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = entry
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _shown(path: tuple[str, ...], value: Any) -> str:
    name = "'" + "'.'".join(path) + "'"
    return f"{name} is missing" if value is _MISSING else f"{name} is {value!r}"


def carries_size(venue: str, raw: Any) -> bool:
    """Whether ``raw`` (an element of a venue's position list) has one of the venue's size
    fields at all (whatever its value), and the fields of ``ENTRY_MARKS``."""
    if not isinstance(raw, Mapping) or any(key not in raw for key in ENTRY_MARKS.get(venue, ())):
        return False
    return any(_at(raw, path) is not _MISSING for path in RAW_SIZE_FIELDS.get(venue, ()))


def position_entry(venue: str, raw: Any) -> bool:
    """Whether ``raw`` (an element of a venue's position list) is a position entry: an object
    with the fields of ``ENTRY_MARKS`` and the venue's size field or its market id field
    (``MARKET_ID_FIELDS``; an entry naming its market without a size is one whose size cannot
    be read). Anything else (``""``, ``null``, ``0``, ``[]``, ``{}``) is not: ccxt reads it
    as an entry of no symbol and no size, which would look flat."""
    if carries_size(venue, raw):
        return True
    if not isinstance(raw, Mapping) or any(key not in raw for key in ENTRY_MARKS.get(venue, ())):
        return False
    return _at(raw, MARKET_ID_FIELDS[venue]) is not _MISSING


def raw_size(venue: str, info: Mapping[str, Any]) -> tuple[str, str]:
    """What the venue's own size field of an entry says: ``('flat', why)`` when it reads
    exactly 0, ``('open', why)`` when it reads a finite nonzero number, ``('unreadable', why)``
    otherwise (missing, null, empty, a bool, not a number, NaN or infinite); ``why`` names the
    field and its value (``"okx 'pos' is None"``)."""
    paths = RAW_SIZE_FIELDS[venue]
    chosen = paths[0]
    value = _at(info, chosen)
    for path in paths:
        candidate = _at(info, path)
        if candidate is not _MISSING and candidate is not None and candidate != "":
            chosen, value = path, candidate
            break
    why = f"{venue} {_shown(chosen, value)}"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return "unreadable", why
    try:
        number = float(value)
    except ValueError:
        return "unreadable", why
    if not math.isfinite(number):
        return "unreadable", why
    return ("flat" if number == 0 else "open"), why


def _sign(value: Any) -> int | None:
    """The sign of a number field (1, -1, 0), ``None`` when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return (number > 0) - (number < 0)


def field_text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    return str(value)


def _binance_leg(info: Mapping[str, Any]) -> str | None:
    # ccxt takes the side from the sign of notional; the leg is positionSide (hedge mode),
    # else (BOTH) the sign of positionAmt. Hedge-mode sizes are signed too (SHORT negative).
    amount = _sign(info.get("positionAmt"))
    named = field_text(info.get("positionSide"))
    if named == "LONG":
        leg = "long"
    elif named == "SHORT":
        leg = "short"
    elif named == "BOTH" and amount in (1, -1):
        leg = "long" if amount == 1 else "short"
    else:
        return None
    sign = 1 if leg == "long" else -1
    if amount == -sign:
        return None
    notional = info.get("notional", _MISSING)
    if notional is not _MISSING and notional is not None and notional != "":
        if _sign(notional) not in (0, sign):
            return None
    return leg


def _bybit_leg(info: Mapping[str, Any]) -> str | None:
    # ccxt: positionIdx other than '0' is hedge mode, and then anything but '1' a short.
    index = field_text(info.get("positionIdx"))
    side = info.get("side")
    said = {"Buy": "long", "Sell": "short"}.get(side) if isinstance(side, str) else None
    if index in ("1", "2"):
        leg = "long" if index == "1" else "short"
        if said is not None and said != leg:
            return None
        if said is None and side not in (None, "", _MISSING):
            return None
        return leg
    if index == "0":
        return said
    return None


def _okx_leg(info: Mapping[str, Any]) -> str | None:
    # ccxt: posSide long/short is the side; net: the sign of pos. A hedge-mode pos is > 0.
    named = field_text(info.get("posSide"))
    amount = _sign(info.get("pos"))
    if info.get("instType") == "MARGIN" and named == "net":
        # ccxt: a margin position held in its base currency is long, in another one short
        held, inst = info.get("posCcy"), info.get("instId")
        if not isinstance(held, str) or not held or not isinstance(inst, str):
            return None
        return "long" if held == inst.split("-")[0] else "short"
    if named in ("long", "short"):
        return named if amount != -1 else None
    if named == "net" and amount in (1, -1):
        return "long" if amount == 1 else "short"
    return None


def _gate_leg(info: Mapping[str, Any]) -> str | None:
    # ccxt: 'side' when present, else the sign of size; dual-mode entries are signed as well.
    amount = _sign(info.get("size"))
    if amount not in (1, -1):
        return None
    leg = "long" if amount == 1 else "short"
    side = info.get("side", _MISSING)
    if side is not _MISSING and side is not None and side != leg:
        return None
    mode = info.get("mode", _MISSING)
    if mode in ("dual_long", "dual_short") and mode != f"dual_{leg}":
        return None
    if mode is not _MISSING and mode not in ("single", "dual_long", "dual_short"):
        return None
    return leg


#: Venues whose ccxt parser takes the side from a field other than the size's sign without
#: checking one against the other (Binance: the sign of ``notional``; Bybit: ``positionIdx``,
#: anything but '0' read as hedge mode and then anything but '1' as short; OKX: ``posSide``;
#: Gate: ``side``): their leg is read from the venue's fields, which must agree.
CHECKED_LEGS = {
    "binance": _binance_leg,
    "binanceusdm": _binance_leg,
    "binancecoinm": _binance_leg,
    "bybit": _bybit_leg,
    "okx": _okx_leg,
    "gate": _gate_leg,
    "gateio": _gate_leg,
}


def checked_leg(venue: str, info: Mapping[str, Any]) -> str | None:
    """The leg of an entry of ``venue`` (one of ``CHECKED_LEGS``) from its own fields, ``None``
    when they name none or disagree: Binance ``positionSide`` LONG/SHORT, else (BOTH) the
    sign of ``positionAmt``, agreeing with the signs of ``positionAmt`` and ``notional``;
    Bybit ``positionIdx`` 1/2, else (0) ``side`` Buy/Sell, agreeing with ``side``; OKX
    ``posSide`` long/short (``pos`` not negative), else (net) the sign of ``pos`` (a margin
    position: ``posCcy``, the base currency long, another short); Gate the
    sign of ``size``, agreeing with ``side`` and ``mode`` where present."""
    return CHECKED_LEGS[venue](info)


def venue_leg(venue: str, info: Mapping[str, Any]) -> str | None:
    """The leg an entry of ``venue`` (one of ``VENUE_LEGS``) names in its own fields, else
    ``None``."""
    for key, legs in VENUE_LEGS[venue]:
        value = info.get(key)
        if value is not None and not isinstance(value, bool) and str(value) in legs:
            return legs[str(value)]
    return None


def market_id(venue: str, info: Mapping[str, Any]) -> tuple[Any, str]:
    """The market id an entry of ``venue`` names in its own fields (``MARKET_ID_FIELDS``) and,
    for a warning, that field and its value (``"okx 'instId' is 'abc'"``)."""
    path = MARKET_ID_FIELDS[venue]
    value = _at(info, path)
    return (None if value is _MISSING else value), f"{venue} {_shown(path, value)}"


def _id_forms(venue: str, markets: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(prefix, base part, suffix) of the loaded markets' venue ids."""
    for market in list(markets.values()):
        if not isinstance(market, Mapping):
            continue
        if venue == "hyperliquid":
            # Hyperliquid's entries name the coin (ccxt's id is an index): the base alone.
            info = market.get("info")
            name = info.get("name") if isinstance(info, Mapping) else None
            name = name if isinstance(name, str) and name else market.get("baseName")
            if isinstance(name, str) and name and "/" not in name and ":" not in name:
                yield "", name, ""
            continue
        mid, base = market.get("id"), market.get("baseId")
        if not isinstance(mid, str) or not isinstance(base, str) or not base:
            continue
        at = mid.upper().find(base.upper())
        if at >= 0:
            yield mid[:at], mid[at : at + len(base)], mid[at + len(base) :]


def _codes(markets: Mapping[str, Any]) -> set[str]:
    """The currency codes and ids of the loaded markets (bases, quotes, settle currencies)."""
    codes: set[str] = set()
    for market in list(markets.values()):
        if isinstance(market, Mapping):
            for key in ("base", "quote", "settle", "baseId", "quoteId", "settleId"):
                code = market.get(key)
                if isinstance(code, str) and code:
                    codes.add(code.upper())
    return codes


def plausible_market_id(venue: str, value: Any, markets: Mapping[str, Any]) -> bool:
    """Whether ``value`` has the form of ``venue``'s market ids: that of a loaded market's id
    with another base in place of its own, in the same letters (a market listed after the
    markets were loaded: OKX ``NEW-USDT-SWAP`` beside ``BTC-USDT-SWAP``), or parts joined by
    ``-``, ``_``, ``/`` or ``:`` of which one is a currency of the loaded markets (a market
    of a kind ccxt did not load: OKX ``BTC-USDT`` margin, ``BTC-USD-261225-60000-C``
    options), as opposed to text no market of the venue could be named (``'abc'``, ``0``,
    ``''``)."""
    if not isinstance(value, str) or not value:
        return False
    parts = re.split(r"[-_/:]", value)
    if len(parts) > 1 and all(part.isalnum() for part in parts):
        if any(part.upper() in _codes(markets) for part in parts):
            return True
    for prefix, base, suffix in _id_forms(venue, markets):
        if len(value) <= len(prefix) + len(suffix):
            continue
        if not (value.startswith(prefix) and value.endswith(suffix)):
            continue
        middle = value[len(prefix) : len(value) - len(suffix)]
        allowed = "0123456789"
        if any(c.isupper() for c in base):
            allowed += "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        if any(c.islower() for c in base):
            allowed += "abcdefghijklmnopqrstuvwxyz"
        if all(c in allowed for c in middle):
            return True
    return False


def side_fields(venue: str, entry: Mapping[str, Any]) -> str:
    """The venue's side fields of an entry and their values, for a warning."""
    info = entry.get("info")
    fields = SIDE_FIELDS.get(venue)
    if not fields or not isinstance(info, Mapping):
        return f"side is {entry.get('side')!r}"
    shown = []
    for key in fields:
        value = info.get(key, _MISSING)
        if key == "szi" and venue == "hyperliquid":
            value = _at(info, ("position", "szi"))
        shown.append(_shown((key,), value))
    return f"{venue} " + ", ".join(shown)


def position_container(venue: str, answer: Any) -> tuple[list[Any] | None, str]:
    """The list of position entries in a venue's decoded answer to its position-list request,
    where ccxt's ``fetch_positions`` takes it from (ccxt 4.5.90), and where that is (for the
    error): ``(None, where)`` when the answer has no such list. ``(None, '')`` for a venue not
    known here."""
    if venue in ("binance", "binanceusdm", "binancecoinm"):
        # positionRisk (v2, v3, coin-margined): a list; the 'account' method: its 'positions'
        if isinstance(answer, list):
            return answer, "the answer"
        if isinstance(answer, Mapping) and isinstance(answer.get("positions"), list):
            return answer["positions"], "'positions'"
        return None, "the answer (a list)"
    if venue in ("gate", "gateio"):
        return (answer if isinstance(answer, list) else None), "the answer (a list)"
    if venue == "bybit":
        result = answer.get("result") if isinstance(answer, Mapping) else None
        if isinstance(result, Mapping):
            for key in ("list", "rows", "data", "dataList"):
                if isinstance(result.get(key), list):
                    return result[key], f"'result'.'{key}'"
        return None, "'result'.'list'"
    if venue == "hyperliquid":
        held = answer.get("assetPositions") if isinstance(answer, Mapping) else None
        return (held if isinstance(held, list) else None), "'assetPositions'"
    if venue in ("okx", "mexc", "htx", "huobi", "bingx", "kucoinfutures", "kucoin", "bitget"):
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if isinstance(data, list):
            return data, "'data'"
        if venue == "bitget" and isinstance(data, Mapping) and isinstance(data.get("list"), list):
            return data["list"], "'data'.'list'"  # unified-account and history answers
        return None, "'data'"
    return None, ""


#: What a decoded venue answer is made of (JSON's types; bytes, which a hook may answer):
#: ``quoted`` shows these by their repr.
_PLAIN = (str, bytes, bytearray, Mapping, list, tuple, numbers.Number, type(None))


def quoted(value: Any, width: int | None = None) -> str:
    """``value`` (a venue's answer, or a part of one) for a log line or an error text: its
    repr, cut to ``width`` characters, when it is one of the types a decoded answer is made of
    (str, bytes, dict, list, a number, a bool, ``None``); otherwise what it is, never its repr.
    ccxt 4.5.90's asyncio ``fetch`` answers a body of a content type that is neither JSON nor
    text (``application/octet-stream``) with aiohttp's ``StreamReader``, unread, where its
    synchronous class answers the text (``ccxt/async_support/base/exchange.py:298``): that is
    "a body of a content type that is not text (...)", not ``<StreamReader eof ...>``."""
    if isinstance(value, _PLAIN):
        text = repr(value)
        return text if width is None else text[:width]
    if value is FAILED:
        return "a request that failed"
    kind = type(value)
    module = kind.__module__ or ""
    if kind.__name__ == "StreamReader" and module.split(".")[0] == "aiohttp":
        return (
            "a body of a content type that is not text (ccxt's asyncio class answered it "
            "unread, as aiohttp's StreamReader)"
        )
    return f"a {module}.{kind.__qualname__} object, not a decoded answer"


def answer_kind(answer: Any) -> str:
    """What a decoded answer is, for an error text: ``"a text body ('<html>...')"``, ``"an
    empty body"``, ``"an object with keys 'code', 'data'"``, ``"a list of 3"``, or (anything
    else) its type and ``quoted`` form."""
    if isinstance(answer, str):
        text = answer.strip()
        return "an empty body" if not text else f"a text body ({text[:60]!r})"
    if isinstance(answer, Mapping):
        keys = ", ".join(repr(k) for k in list(answer)[:6])
        return f"an object with keys {keys}" if keys else "an empty object"
    if isinstance(answer, list):
        return f"a list of {len(answer)}"
    if isinstance(answer, _PLAIN):
        return f"a {type(answer).__name__} ({answer!r:.60})"
    return quoted(answer)


def unreadable_entries(venue: str, container: list[Any] | None) -> str:
    """The entries of a venue's list whose size field cannot be read, each with its place, its
    market id and that field (for an error), e.g. ``"#1 (okx 'instId' is 'ETH-USDT-SWAP':
    okx 'pos' is 'abc')"``; ``''`` when none."""
    found = []
    for index, raw in enumerate(container or ()):
        if isinstance(raw, Mapping) and carries_size(venue, raw):
            state, why = raw_size(venue, raw)
            if state == "unreadable":
                found.append(f"#{index} ({market_id(venue, raw)[1]}: {why})")
    return ", ".join(found)


def _element(raw: Any) -> str:
    """What a list element that is not a position entry is, for the error."""
    if isinstance(raw, Mapping):
        keys = ", ".join(repr(k) for k in list(raw)[:6])
        return f"an object with keys {keys}" if keys else "an empty object"
    if not isinstance(raw, _PLAIN):
        return quoted(raw)
    return f"{raw!r:.60} (a {type(raw).__name__})"


def check_elements(venue: str, container: list[Any], where: str) -> None:
    """Raises ``ValueError`` naming the first element of a venue's list (at ``where`` in its
    answer) that is not a position entry (``position_entry``), with its place."""
    for index, raw in enumerate(container):
        if not position_entry(venue, raw):
            field = " and ".join(
                ["'" + "'.'".join(RAW_SIZE_FIELDS[venue][0]) + "'"]
                + [f"'{key}'" for key in ENTRY_MARKS.get(venue, ())]
            )
            market = "'" + "'.'".join(MARKET_ID_FIELDS[venue]) + "'"
            raise ValueError(
                f"{venue}'s position list ({where}) holds at #{index} {_element(raw)}, not a "
                f"position entry (an object with {field}, or naming its market with {market}): "
                "the list cannot be read whole"
            )


def check_answer(venue: str, answer: Any, entries: list[Any]) -> None:
    """Raises ``ValueError`` unless ``answer`` (the decoded answer of a position-list request of
    ``venue``) is a position list: its list of entries where the venue puts it, holding, when
    not empty, an entry with the venue's size field and only position entries
    (``position_entry``: an element that is anything else, ``""``, ``null``, ``{}``, makes a
    list that cannot be read whole, not a flat entry); and every entry of it that is not flat
    parsed by ccxt (``entries``: what ``fetch_positions`` answered). Venues not in
    ``RAW_SIZE_FIELDS`` are not checked."""
    if venue not in RAW_SIZE_FIELDS:
        return
    container, where = position_container(venue, answer)
    if container is None:
        raise ValueError(
            f"{venue}'s answer to the position-list request is not a position list: "
            f"{answer_kind(answer)}, without a list at {where}"
        )
    if container and not any(carries_size(venue, raw) for raw in container):
        field = " and ".join(
            ["'" + "'.'".join(RAW_SIZE_FIELDS[venue][0]) + "'"]
            + [f"'{key}'" for key in ENTRY_MARKS.get(venue, ())]
        )
        named = sorted({str(e.get("symbol")) for e in entries if isinstance(e, Mapping)})
        listed = f" (ccxt read entries for {', '.join(named[:5])})" if named else ""
        raise ValueError(
            f"{venue}'s answer to the position-list request is not a position list: none of "
            f"its {len(container)} entries has {field}{listed}"
        )
    check_elements(venue, container, where)
    # Entries that are not flat, in the answer and in ccxt's reading of it (counted: ccxt may
    # copy an entry into its ``info``, as Binance's ``account`` method does).
    held = [
        raw for raw in container if carries_size(venue, raw) and raw_size(venue, raw)[0] != "flat"
    ]
    parsed = [
        info
        for entry in entries
        if isinstance(entry, Mapping)
        and isinstance(info := entry.get("info"), Mapping)
        and carries_size(venue, info)
        and raw_size(venue, info)[0] != "flat"
    ]
    if len(held) > len(parsed):
        seen = {id(info) for info in parsed}
        missing = [raw for raw in held if id(raw) not in seen] or held
        ids = ", ".join(
            repr(raw.get("symbol") or raw.get("instId") or raw.get("contract")) for raw in missing
        )
        raise ValueError(
            f"{venue}'s position list holds {len(held)} entries that are not flat, and ccxt "
            f"left out of its answer {len(held) - len(parsed)} of them ({ids}): the list "
            "cannot be read whole"
        )


class _Failed:
    """The answer noted for a request that raised (``FAILED``)."""

    def __repr__(self) -> str:
        return "FAILED"


#: The ``Heard.answer`` of a request that raised: a ``fetch_positions`` that still answered
#: (a subclass catching the error) answered from something else than the venue's list.
FAILED = _Failed()


class Heard(NamedTuple):
    """One HTTP request ccxt's ``fetch`` made inside a ``recording``, and its decoded answer.
    ``body`` is the request's body as ccxt sent it (a text, or ``None``); the headers, which
    carry credentials, are not kept."""

    method: str
    url: str
    body: Any
    answer: Any


_BINANCE_ENDPOINTS = (
    ("GET", r"/fapi/v[23]/positionRisk"),
    ("GET", r"/dapi/v1/positionRisk"),
    ("GET", r"/papi/v1/(?:um|cm)/positionRisk"),
    ("GET", r"/fapi/v[23]/account"),
    ("GET", r"/dapi/v1/account"),
    ("GET", r"/papi/v2/um/account"),
    ("GET", r"/papi/v1/cm/account"),
)
_GATE_ENDPOINTS = (
    ("GET", r"/api/v4/(?:futures|delivery)/[A-Za-z0-9]+/positions"),
    ("GET", r"/api/v4/options/positions"),
)
_KUCOIN_ENDPOINTS = (
    ("GET", r"/api/v1/positions"),
    ("GET", r"/api/ua/v1/unified/position/open-list"),
)
_HTX_ENDPOINTS = (
    ("GET", r"/v5/trade/position/opens"),
    ("POST", r"/swap-api/v1/swap_position_info"),
    ("POST", r"/api/v1/contract_position_info"),
)
#: Per ccxt exchange id: the endpoints that answer a list of the account's open positions,
#: each ``(HTTP method, pattern)``, the pattern matched at the end of the request URL's path
#: (the host, which testnets, demo accounts and regional sites change, is not looked at). Read
#: in ccxt 4.5.90's ``fetch_positions`` of each venue, with every branch of its params and
#: options:
#:
#: - Binance: ``positionRisk`` (the default method), USD-M ``fapi/v3`` (``useV2``: ``fapi/v2``),
#:   coin-M ``dapi/v1``, portfolio margin ``papi/v1/um`` and ``papi/v1/cm``; the opt-in
#:   ``account`` method (``options['fetchPositions'] = 'account'``): ``fapi/v3/account``
#:   (``fapi/v2``), ``dapi/v1/account``, ``papi/v2/um/account``, ``papi/v1/cm/account``. The
#:   ``option`` method's ``eapi/v1/position`` is not one: its entries carry ``quantity``, not
#:   ``positionAmt``. The leverage brackets ccxt loads first (``leverageBracket``) are not one.
#: - Bybit ``v5/position/list``, every category and settle coin, one page per request (ccxt's
#:   ``paginate`` option, which would make several in one call, is asked off: ``NO_PAGING``).
#: - OKX ``api/v5/account/positions`` (not the ``positions-history`` method).
#: - Bitget ``api/v2/mix/position/all-position``, the unified account's
#:   ``api/v3/position/current-position`` (after ``api/v3/account/settings``, which ccxt asks
#:   to know whether the account is unified); not ``history-position`` (``useHistoryEndpoint``:
#:   closed positions).
#: - Gate ``api/v4/futures/{settle}/positions``, ``api/v4/delivery/{settle}/positions``,
#:   ``api/v4/options/positions``; not the per-contract paths of ``fetch_position`` (single
#:   and dual mode: ``positions/{contract}``, ``dual_comp/positions/{contract}``).
#: - KuCoin futures ``api/v1/positions``, the unified account's
#:   ``api/ua/v1/unified/position/open-list`` (after ``api/ua/v1/account/mode``).
#: - MEXC ``api/v1/private/position/open_positions``.
#: - HTX linear ``v5/trade/position/opens`` (GET; cross and isolated in one list), coin-margined
#:   swaps ``swap-api/v1/swap_position_info`` and futures ``api/v1/contract_position_info``
#:   (POST).
#: - BingX ``openApi/swap/v2/user/positions``, coin-margined ``openApi/cswap/v1/user/positions``,
#:   standard contracts ``openApi/contract/v1/allPosition``.
#: - Hyperliquid ``info`` (POST), one URL for every query: the request is the position list's
#:   when its JSON body's ``type`` is ``clearinghouseState`` (``INFO_TYPES``).
POSITION_ENDPOINTS: dict[str, tuple[tuple[str, str], ...]] = {
    "binance": _BINANCE_ENDPOINTS,
    "binanceusdm": _BINANCE_ENDPOINTS,
    "binancecoinm": _BINANCE_ENDPOINTS,
    "bybit": (("GET", r"/v5/position/list"),),
    "okx": (("GET", r"/api/v5/account/positions"),),
    "bitget": (
        ("GET", r"/api/v2/mix/position/all-position"),
        ("GET", r"/api/v3/position/current-position"),
    ),
    "gate": _GATE_ENDPOINTS,
    "gateio": _GATE_ENDPOINTS,
    "kucoinfutures": _KUCOIN_ENDPOINTS,
    "kucoin": _KUCOIN_ENDPOINTS,
    "mexc": (("GET", r"/api/v1/private/position/open_positions"),),
    "htx": _HTX_ENDPOINTS,
    "huobi": _HTX_ENDPOINTS,
    "bingx": (
        ("GET", r"/openApi/swap/v2/user/positions"),
        ("GET", r"/openApi/cswap/v1/user/positions"),
        ("GET", r"/openApi/contract/v1/allPosition"),
    ),
    "hyperliquid": (("POST", r"/info"),),
}
#: Venues whose position-list endpoint answers other queries too, told apart by the ``type``
#: of the request's JSON body.
INFO_TYPES: dict[str, str] = {"hyperliquid": "clearinghouseState"}
_PATTERNS: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    venue: tuple((method, re.compile(f"(?:{pattern})$")) for method, pattern in endpoints)
    for venue, endpoints in POSITION_ENDPOINTS.items()
}


def _body_type(body: Any) -> Any:
    """The ``type`` of a JSON object body (text or bytes), else ``None``."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    return body.get("type") if isinstance(body, Mapping) else None


def _path(url: Any) -> str:
    try:
        return urlsplit(str(url)).path
    except ValueError:
        return ""


def position_request(venue: str, heard: Heard) -> bool:
    """Whether ``heard`` asked ``venue`` (one of ``POSITION_ENDPOINTS``) for its list of open
    positions: its method and the end of its URL's path are one of the venue's endpoints
    (and, on Hyperliquid, its body's ``type`` is ``clearinghouseState``)."""
    method = str(heard.method or "GET").upper()
    path = _path(heard.url)
    if not any(m == method and p.search(path) for m, p in _PATTERNS.get(venue, ())):
        return False
    wanted = INFO_TYPES.get(venue)
    return wanted is None or _body_type(heard.body) == wanted


def shown_request(heard: Heard) -> str:
    """A request for an error text: its method and path (``"GET /fapi/v3/positionRisk"``),
    and its body's ``type`` where it has one; never its query or body, which carry
    signatures and account addresses."""
    text = f"{str(heard.method or 'GET').upper()} {_path(heard.url) or '?'}"
    kind = _body_type(heard.body)
    return f"{text} ({kind})" if isinstance(kind, str) and kind else text


def not_json(heard: Sequence[Heard]) -> str | None:
    """Why the answers of the requests ``heard`` (one ccxt call's) are not all the venue's
    JSON, else ``None``. ccxt's ``fetch`` answers a body that is a JSON object or array decoded
    (a dict, a list) and any other body as it came: a page's text (an HTML page with status
    200; in ccxt's asyncio class also a page of a status ccxt maps to no error, a gateway's
    524, where its synchronous class raises), or a body of no text type (its text in the
    synchronous class, aiohttp's ``StreamReader`` in the asyncio one); ccxt's parsers read
    those as an answer with nothing in it (an empty list, a ticker without a price, candles of
    ``None``) or fail on them. Requests that failed (``FAILED``) are not looked at."""
    for one in heard:
        if one.answer is FAILED or isinstance(one.answer, (Mapping, list)):
            continue
        return f"{shown_request(one)} answered {answer_kind(one.answer)}, not the venue's JSON"
    return None


def _listed(heard: Sequence[Heard]) -> str:
    shown = [shown_request(one) for one in heard[:8]]
    more = f", and {len(heard) - 8} more" if len(heard) > 8 else ""
    return ", ".join(shown) + more


class UnknownEndpoint(ValueError):
    """None of a ``fetch_positions`` call's requests went to one of the venue's known
    position-list endpoints (``position_answer``); ``last`` is the call's last answer."""

    def __init__(self, message: str, last: Any) -> None:
        super().__init__(message)
        self.last = last


def position_answer(venue: str, heard: Sequence[Heard]) -> Any:
    """The decoded answer of the position-list request among the requests one
    ``fetch_positions`` call made (``heard``, in order), chosen by its endpoint
    (``position_request``) and not by its place: a venue's class, a later ccxt version or a
    user's subclass may make other requests after it (a mark price, an account setting, a
    time sync). ``None`` when nothing was heard (no HTTP request: ``fetch_positions``
    answered from elsewhere). Raises ``ValueError`` naming the requests heard when more than
    one is a position-list request of ``venue`` (which answer ccxt's list was read from
    cannot be told), and ``UnknownEndpoint`` (carrying the last answer) when none is: a ccxt
    release that moved the venue's endpoint (Binance's ``fapi/v2`` to ``v3``), whose last
    answer the client then checks as before (``CcxtClient._fetch_page``). A venue not in
    ``POSITION_ENDPOINTS`` (whose answers are not checked): the last answer heard."""
    if not heard:
        return None
    if venue not in POSITION_ENDPOINTS:
        return heard[-1].answer
    found = [one for one in heard if position_request(venue, one)]
    answered = [one for one in found if one.answer is not FAILED]
    if len(answered) == 1:
        return answered[0].answer  # (a request that failed before it: ccxt's retry)
    if not found:
        last = [one for one in heard if one.answer is not FAILED]
        if not last:
            raise ValueError(
                f"every request ccxt's fetch_positions made failed ({_listed(heard)}), though "
                "it answered: the list cannot be checked"
            )
        raise UnknownEndpoint(
            f"none of the {len(heard)} requests ccxt's fetch_positions made went to one of "
            f"{venue}'s known position-list endpoints ({_listed(heard)})",
            last[-1].answer,
        )
    if not answered:
        raise ValueError(
            f"the request to {venue}'s position-list endpoint failed ({_listed(found)}), "
            "though ccxt's fetch_positions answered: what it answered is not the venue's list"
        )
    raise ValueError(
        f"{len(found)} of the requests ccxt's fetch_positions made went to {venue}'s "
        f"position-list endpoints ({_listed(found)}; of {len(heard)} requests): which answer "
        "ccxt read the list from cannot be told, and the list cannot be checked (the client "
        "reads one list per call: leave ccxt's own paging of the positions off)"
    )


# The requests recorded for the current call (``recording``): a list while a call records,
# else None. A context variable: each thread has its own, and an asyncio task submitted from
# a thread (``asyncio.run_coroutine_threadsafe``) starts with a copy of that thread's.
_HEARD: contextvars.ContextVar[list[Heard] | None] = contextvars.ContextVar(
    "position_manager_rs_answers", default=None
)
_RECORDER = "_position_manager_rs_records_answers"


def _note(args: tuple[Any, ...], kwargs: dict[str, Any], answer: Any) -> None:
    """Notes a request of ccxt's ``fetch(url, method='GET', headers=None, body=None)`` and
    its answer for the current ``recording``, if any (ccxt passes them by position)."""
    heard = _HEARD.get()
    if heard is not None:
        count = len(args)
        heard.append(
            Heard(
                args[1] if count > 1 else kwargs.get("method", "GET"),
                args[0] if count else kwargs.get("url", ""),
                args[3] if count > 3 else kwargs.get("body"),
                answer,
            )
        )


def record_answers(exchange: Any) -> bool:
    """Wraps ``exchange.fetch`` (ccxt's one HTTP request method, sync or asyncio) once so that
    it notes each request (method, URL, body) and its decoded answer (``FAILED`` when it
    raised; the exception goes on unchanged) for the ``recording`` of the calling thread or
    task; the answer itself is returned unchanged, and nothing is noted outside
    ``recording``. Only an exchange whose class defines ``fetch`` is wrapped (a ccxt
    exchange); ``False`` when it was not."""
    fetch = getattr(exchange, "fetch", None)
    defined = getattr(type(exchange), "fetch", None)
    if not callable(fetch) or not inspect.isfunction(defined):
        return False
    if getattr(fetch, _RECORDER, False):
        return True
    if inspect.iscoroutinefunction(fetch):

        async def recorded_async(*args: Any, **kwargs: Any) -> Any:
            try:
                answer = await fetch(*args, **kwargs)
            except BaseException:
                _note(args, kwargs, FAILED)
                raise
            _note(args, kwargs, answer)
            return answer

        wrapper: Any = recorded_async
    else:

        def recorded(*args: Any, **kwargs: Any) -> Any:
            try:
                answer = fetch(*args, **kwargs)
            except BaseException:
                _note(args, kwargs, FAILED)
                raise
            _note(args, kwargs, answer)
            return answer

        wrapper = recorded
    functools.update_wrapper(wrapper, fetch)
    setattr(wrapper, _RECORDER, True)
    try:
        exchange.fetch = wrapper
    except (AttributeError, TypeError):
        return False
    return True


@contextmanager
def recording() -> Iterator[list[Heard]]:
    """The requests ``exchange.fetch`` makes inside this block, on this thread (and in asyncio
    tasks submitted from it), in order, each with its decoded answer (``Heard``)."""
    heard: list[Heard] = []
    token = _HEARD.set(heard)
    try:
        yield heard
    finally:
        _HEARD.reset(token)
