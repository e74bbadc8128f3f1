"""The loyalty rule language: text -> parse -> check -> compile -> evaluate.

What other packages (the simulator, a notebook) use of the language is named here; the engine
that runs a compiled program has its own door, `rulelang.engine`. Names beyond the first few are
resolved on first use, so `import rulelang` stays light.
"""

from __future__ import annotations

import importlib

from rulelang.errors import DataError, Diagnostic, LoyaltyError, ProgramError

# Each public name and the module that defines it (under another name where the module's own
# name would clash with the module itself, e.g. `rulelang.trace`).
_EXPORTS = {
    "Program": ("rulelang.program", "Program"),
    "names_in": ("rulelang.model", "names_in"),
    "trace_member": ("rulelang.trace", "trace"),
    "check_history": ("rulelang.invariants", "check_history"),
    "search_invariants": ("rulelang.invariants", "search"),
    "describe_violation": ("rulelang.invariants", "describe"),
    "transactions_table": ("rulelang.invariants", "transactions_table"),
    "ledger_table": ("rulelang.invariants", "ledger_table"),
    "cli_commands": ("rulelang.cli", "commands"),
    # Writing files without losing any (rulelang.files), shared by `fmt --write` and the simulator.
    "atomic_replace": ("rulelang.files", "atomic_replace"),
    "atomic_write_bytes": ("rulelang.files", "atomic_write_bytes"),
    "current_umask": ("rulelang.files", "current_umask"),
    "fsync_dir": ("rulelang.files", "fsync_dir"),
    "csv_rows_safe": ("rulelang.files", "csv_rows_safe"),
    "formula_safe": ("rulelang.files", "formula_safe"),
    "refuse_input_as_output": ("rulelang.files", "refuse_input_as_output"),
    "sha256_file": ("rulelang.files", "sha256_file"),
}

__all__ = ["DataError", "Diagnostic", "LoyaltyError", "ProgramError", "load", "loads", *sorted(_EXPORTS)]


def load(path):
    """Read, parse, check and compile a program file; errors raise `ProgramError`."""
    from rulelang.program import load as _load

    return _load(path)


def loads(text, path="<program>"):
    """Like `load`, from program text."""
    from rulelang.program import loads as _loads

    return _loads(text, path)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # resolved once
    return value


def __dir__():
    return __all__
