"""The engine's one door: what runs a compiled program over data, for the simulator and the API.

Behind it: `evaluate` (the engines' table), `data` (the data contract: a validated `Batch` from a
transactions frame), `ledger` (postings as a frame), `compile` (the compiled program), `columns`
and `masks` (conditions column-at-a-time), `kernel` (the per-member state machine, numba),
`calendar` (time as int64 nanoseconds, civil dates in numba) and `arrowtext` (Arrow text columns
compared without building dictionaries). The simulator imports only the names below; the modules
behind them may change shape without it noticing. (`evaluate` is reached through a loaded
program, `Program.evaluate`; the name here would clash with its module.)

Names are resolved on first use, so importing the door does not load numba or compile anything:
`loyalty check` never pays for the engine.
"""

from __future__ import annotations

import importlib

# Each public name and the module behind the door that defines it (a full name: outside it).
_EXPORTS = {
    "ENGINES": "evaluate",
    "Batch": "data",
    "Origin": "data",
    "RedemptionPolicy": "data",
    "EVENT": "data",
    "ENROLL": "rulelang.builtins",  # the event name of a member's enrolment
    "prepare": "data",
    "event_names": "data",
    "event_codes": "data",
    "money_kinds": "data",
    "to_minor_units": "data",
    "basket_starts": "data",
    "needed_columns": "data",
    "read_datetimes": "data",
    "parse_datetimes": "data",
    "DATETIME_RANGE": "data",
    "FIRST_DATETIME": "data",
    "LAST_DATETIME": "data",
    "ISO_EXAMPLE": "data",
    "compile_model": "compile",
    "available_cores": "compile",
    "member_parts": "compile",
    "copied_columns": "masks",
    "compiled_on_disk": "kernel",
    "NAT": "calendar",
    "NS_PER_DAY": "calendar",
    "fnv1a": "arrowtext",
}
_MODULES = frozenset({"arrowtext", "budgets"})  # helper modules that are themselves part of the door

__all__ = sorted(_EXPORTS) + sorted(_MODULES)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = _EXPORTS[name]
        value = getattr(importlib.import_module(module if "." in module else f"{__name__}.{module}"), name)
    elif name in _MODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # resolved once
    return value


def __dir__():
    return __all__
