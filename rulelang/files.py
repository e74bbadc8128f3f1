"""Writing files without losing any: atomic replacement, inputs never overwritten, formula-safe CSV,
and content hashes of the inputs an output was made from.

The language commands (`fmt --write`) and the simulator's writers share these; rulelang never
imports simulator, so they live here.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from rulelang.errors import LoyaltyError

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_START = r"^[=+\-@\t\r]"
# A plain number is not a formula, even when it starts with + or -: it stays as written.
PLAIN_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
HASH_CHUNK = 1 << 20


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a new or renamed file) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot fsync a folder; the data itself was synced
        pass
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask (reading it means setting it; it is put straight back)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextmanager
def atomic_replace(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` (same filesystem) for a writer; when the block ends, the file
    written there is synced and renamed over `path`, keeping the file's mode. A failed write (full
    disk, file size limit, Ctrl-C) leaves the old file as it was and no temporary file behind."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace `path` with `data` all at once (see `atomic_replace`)."""
    with atomic_replace(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _same(a: Path, b: Path) -> bool:
    """One file or folder under two names (equal resolved paths, a symlink or a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_input_as_output(outputs: Mapping[str, str | Path | None], inputs: Mapping[str, str | Path | None]) -> None:
    """Refuse, before any work, an output that would overwrite an input.

    `outputs` maps a flag (`--rejects`, `--out`) to a file, or to a folder that is replaced as a
    whole (a flag ending in `out`): no input may be that file, be that folder, or lie inside it.
    `inputs` maps what each input is (`transactions`, ...) to its path; None and DataFrames are skipped.
    """
    given = {what: Path(p) for what, p in inputs.items() if isinstance(p, str | os.PathLike)}
    for flag, out in outputs.items():
        if out is None:
            continue
        out = Path(out)
        for what, src in given.items():
            inside = _inside(src, out) if flag.endswith("out") else False
            if _same(out, src) or inside:
                where = "holds" if inside else "is"
                raise LoyaltyError(
                    f"{out}: error: {flag} {where} the {what} file {src}; writing there would destroy an input. Choose another {flag} path."
                )


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` lies in `folder` (following symlinks), or is a hard link of a file in it."""
    if not folder.exists():
        return False
    if folder.resolve() in path.resolve().parents:
        return True
    if folder.is_dir():
        return any(_same(entry, path) for entry in folder.iterdir() if entry.is_file())
    return False


def sha256_file(path: str | Path) -> str:
    """The file's sha256 in hex, read in 1 MiB pieces (hashlib releases the GIL on them, so it runs
    beside the simulation on another thread)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def formula_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` for a CSV a spreadsheet may open: a text cell (or header) that starts with = + - @,
    a tab or a carriage return gets a leading `'`, so it shows as text and never runs. Numbers are
    left alone (numeric columns, and text cells that are a plain number such as `-5`).

    Column at a time: only text cells of object/string/category columns are looked at."""
    out = frame
    for col in frame.columns:
        values = frame[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            cats = values.cat.categories
            if cats.dtype == object or pd.api.types.is_string_dtype(cats.dtype):
                fixed = neutralised(pd.Series(cats, dtype=object))
                if not fixed.equals(pd.Series(cats, dtype=object)):
                    out = out if out is not frame else frame.copy()
                    out[col] = values.cat.rename_categories(list(fixed))
            continue
        if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype):
            continue
        fixed = neutralised(values)
        if fixed is not values:
            out = out if out is not frame else frame.copy()
            out[col] = fixed
    names = [neutralise_text(c) if isinstance(c, str) else c for c in frame.columns]
    if names != list(frame.columns):
        out = out if out is not frame else frame.copy()
        out.columns = names
    return out


def neutralised(values: pd.Series) -> pd.Series:
    """The text cells of `values` that could be formulas, prefixed with `'`; others (numbers,
    Decimals, missing values) as they are. The same Series when nothing needed it."""
    try:
        text = values.str  # on an object column, only its str cells answer; the rest give NaN
    except AttributeError:  # no text at all (a column of Decimals, say)
        return values
    risky = text.contains(FORMULA_START, regex=True).fillna(False).astype(bool)
    if not risky.any():
        return values
    risky &= ~text.contains(PLAIN_NUMBER, regex=True).fillna(False).astype(bool)
    if not risky.any():
        return values
    out = values.astype(object).copy()
    out[risky] = "'" + out[risky].astype(str)
    return out


def neutralise_text(cell: str) -> str:
    """One text cell (a header, a name) made safe as `formula_safe` does it."""
    return neutralised(pd.Series([cell], dtype=object)).iloc[0]


def csv_rows_safe(rows: Iterable[list]) -> list[list]:
    """Rows for `csv.writer` with every text cell made formula-safe (numbers untouched)."""
    return [[neutralise_text(c) if isinstance(c, str) else c for c in row] for row in rows]
