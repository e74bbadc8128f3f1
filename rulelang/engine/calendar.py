"""The calendar the engine counts in: time as int64 nanoseconds since 1970-01-01 (NaT as the
smallest int64) and days as day numbers, with proleptic Gregorian civil dates worked out in numba
(H. Hinnant's algorithms) so the kernel and the column evaluator never leave compiled code for a
date. One place for these constants: the loader, the simulator's measures and the kernel agree.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NS_PER_DAY = 86_400_000_000_000
NAT = np.iinfo(np.int64).min  # "no time" in an int64 time column (what NumPy's NaT is as int64)


@njit(cache=True, nogil=True)
def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = y - (1 if m <= 2 else 0)
    era = y // 400  # (floor division: Hinnant's `y - 399` adjusts C's truncating one)
    yoe = y - era * 400
    mp = m + (-3 if m > 2 else 9)
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@njit(cache=True, nogil=True)
def civil_from_days(z):
    """(year, month, day) of a day number."""
    z = z + 719468
    era = z // 146097  # (floor division, as above)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (1 if m <= 2 else 0), m, d


@njit(cache=True, nogil=True)
def month_length(y, m):
    if m == 12:
        return 31
    return days_from_civil(y, m + 1, 1) - days_from_civil(y, m, 1)


@njit(cache=True, nogil=True)
def add_months(day, n):
    """The same day of the month n months later, clamped to the month's end (day numbers)."""
    y, m, d = civil_from_days(day)
    months = y * 12 + m - 1 + n
    ny = months // 12
    nm = months - ny * 12 + 1
    ml = month_length(ny, nm)
    return days_from_civil(ny, nm, d if d < ml else ml)
