"""The loyalty rule language: text -> parse -> check -> compile -> evaluate."""

from rulelang.errors import DataError, Diagnostic, LoyaltyError, ProgramError

__all__ = ["DataError", "Diagnostic", "LoyaltyError", "ProgramError", "load", "loads"]


def load(path):
    """Read, parse, check and compile a program file; errors raise `ProgramError`."""
    from rulelang.program import load as _load

    return _load(path)


def loads(text, path="<program>"):
    """Like `load`, from program text."""
    from rulelang.program import loads as _loads

    return _loads(text, path)
