"""An output set (simulate's or compare's files) written whole, or not at all.

The files are written into a temporary folder beside the target (same filesystem), synced, and
swapped in at once: on Linux `renameat2(RENAME_EXCHANGE)` exchanges the two folders atomically;
elsewhere the old folder is renamed aside and the new one renamed in, and a kill between the two
renames is mended by the next run (the old set is put back). So the folder holds the complete old
set or the complete new one, whatever kills the run. Runs into one folder are serialised by an
exclusive `flock` on a lock file beside it (`.<folder>.lock`, left in place: removing it would race).
A folder holding anything but this set's files is refused, never deleted.

Test hook: with `LOYALTY_TEST_FAULT=<step>:<SIGNAL>` in the environment (e.g. `ledger.parquet:SIGKILL`)
the process sends itself the signal at that step of the write (`STEPS`, and each file's name), or
after each run (`simulating`, in the commands); tests/simulator/test_outputs.py kills a write so at
every step. Nothing else reads it.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from rulelang import current_umask, fsync_dir
from rulelang.errors import LoyaltyError

SIMULATION_FILES = ("summary.json", "monthly.csv", "rewards.csv", "ledger.parquet", "triangles.csv", "urr.csv", "segments.csv", "report.html", "report.xlsx")
# Written when the scenario asks for it (`accounting:`) or the program has tiers (urr_by_tier.csv);
# a folder may hold them from an earlier run.
OPTIONAL_FILES = ("accounting.csv", "urr_by_tier.csv")
COMPARE_FILES = ("compare.html", "compare.csv", "compare.xlsx")
# The write's steps besides one per file (after it is written), in order.
STEPS = ("locked", "temporary", "synced", "aside", "swapped", "done")
FAULT_ENV = "LOYALTY_TEST_FAULT"
_NEW, _OLD = "new", "old"


def checkpoint(step: str) -> None:
    """The test-only fault hook (see the module's docstring)."""
    spec = os.environ.get(FAULT_ENV)
    if spec and spec.rpartition(":")[0] == step:
        os.kill(os.getpid(), getattr(signal, spec.rpartition(":")[2]))


def check_target(out: str | Path, names: tuple[str, ...]) -> None:
    """Refuse an `out` that is a file or a folder holding anything but the set `names` (say so
    before any work: the folder is replaced as a whole, and a user's own files are never deleted)."""
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise LoyaltyError(f"{out}: error: the output folder is a file or a link; give a folder path (it is replaced as a whole)")
    if not out.is_dir():
        return
    others = sorted(p.name for p in out.iterdir() if p.name not in names or not p.is_file() or p.is_symlink())
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise LoyaltyError(
            f"{out}: error: the output folder holds files that are not this command's outputs ({shown}); "
            f"it is replaced as a whole, so choose a new or empty folder, or one written by this command"
        )


def write_set(out: str | Path, files: Mapping[str, Callable[[Path], None]], may_hold: tuple[str, ...] = ()) -> Path:
    """Write `files` (name -> a writer given the file's path) as the whole content of folder `out`;
    `may_hold`: other names of the same command's outputs an earlier run may have left there."""
    out = Path(out)
    names = tuple(files) + tuple(may_hold)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with _locked(out):
            checkpoint("locked")
            _mend(out)
            check_target(out, names)
            _replace(out, files)
    except OSError as exc:
        raise LoyaltyError(f"{out}: error: cannot write the outputs ({exc}); the folder is unchanged") from None
    return out


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    with open(out.parent / f".{out.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second run waits here until the first has swapped its set in
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _leftovers(out: Path, kind: str) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.{kind}-*"))


def recover(out: str | Path) -> None:
    """Mend what a killed write into `out` left (every write does this first)."""
    out = Path(out)
    with _locked(out):
        _mend(out)


def _mend(out: Path) -> None:
    """What a killed run left, mended (we hold the lock, so no other run is writing): an old set
    renamed aside while the new one was not yet in goes back; half-written sets are removed."""
    old = _leftovers(out, _OLD)
    if old and not out.exists():
        os.rename(old[-1], out)
        old = old[:-1]
    for leftover in _leftovers(out, _NEW) + old:
        shutil.rmtree(leftover, ignore_errors=True)


def _replace(out: Path, files: Mapping[str, Callable[[Path], None]]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{_NEW}-", dir=out.parent))
    try:
        checkpoint("temporary")
        for name, write in files.items():
            path = tmp / name
            write(path)
            _fsync(path)
            checkpoint(name)
        os.chmod(tmp, (os.stat(out).st_mode if out.exists() else 0o777 & ~current_umask()) & 0o7777)
        fsync_dir(tmp)
        checkpoint("synced")
        with _uninterrupted():
            _swap(tmp, out)
            fsync_dir(out.parent)
            checkpoint("swapped")
            shutil.rmtree(tmp, ignore_errors=True)  # the old set, after an exchange
            checkpoint("done")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap(new: Path, out: Path) -> None:
    """Put folder `new` at `out`; afterwards `new` holds the old set, if there was one."""
    if not out.exists():
        os.rename(new, out)
        return
    if exchange(new, out):
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.{_OLD}-", dir=out.parent))
    os.rename(out, aside)  # replaces the empty placeholder folder
    try:
        checkpoint("aside")
        os.rename(new, out)
    except BaseException:
        os.rename(aside, out)  # the old set back (after a kill here, the next run puts it back)
        raise
    os.rename(aside, new)


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically with Linux's renameat2(RENAME_EXCHANGE); False where
    the system or filesystem cannot (then the caller renames in two steps)."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ctrl-C is held back while the sets are swapped (the swap is quick and must not be left half
    done by the portable fallback); a Ctrl-C that came meanwhile is dropped: the run has finished."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
