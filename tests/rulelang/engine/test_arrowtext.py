"""rulelang.engine.arrowtext: ids compared from Arrow's bytes agree with comparing the Python strings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from rulelang.engine import arrowtext


def _reference_codes(member, ids):
    codes, first = [], {}
    for i, (m, t) in enumerate(zip(member, ids, strict=True)):
        if t is None or t == "":
            codes.append(-1)
            continue
        codes.append(first.setdefault((m, t), i))
    return codes


def test_arrow_text_and_its_blanks_are_told_apart():
    ids = pd.Series(["T1", "T1", None, None, "", "", "T2", "t2", "T2"], dtype="str")
    assert arrowtext.is_arrow_text(ids) and not arrowtext.is_arrow_text(ids.astype("category"))
    assert arrowtext.blank(ids).tolist() == [False, False, True, True, True, True, False, False, False]


def test_member_codes_share_a_code_per_member_and_id_and_none_across_members():
    member = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    ids = pd.Series(["A", "B", "A", None, "A", "A", "", "B", "B"], dtype="str")
    assert arrowtext.member_codes(member, ids).tolist() == [0, 1, 0, -1, 4, 4, -1, 7, 7]


@pytest.mark.parametrize("seed", range(3))
def test_member_codes_equal_a_dictionary_per_member_on_random_histories(seed):
    # Heavy-tailed members (one far longer than the rest, so its table is the one sized for all),
    # ids reused within and across members, blanks and missing ids, byte-level near misses.
    rng = np.random.default_rng(seed)
    sizes = np.r_[rng.integers(1, 30, 300), 4000]
    member = np.repeat(np.arange(len(sizes)), sizes)
    pool = np.array([f"T{k:06d}" for k in range(900)] + ["T00000", "T0000000", "", None], dtype=object)
    ids = pool[rng.integers(0, len(pool), len(member))]
    runs = rng.random(len(member)) < 0.4  # lines of a basket repeat the id before them
    for i in np.flatnonzero(runs[1:]) + 1:
        ids[i] = ids[i - 1]
    series = pd.Series(ids, dtype="str")
    assert arrowtext.member_codes(member, series).tolist() == _reference_codes(member.tolist(), ids.tolist())


def test_sliced_and_large_text_read_from_their_own_offsets():
    whole = pa.array(["x", "A", "B", "A", None], type=pa.large_string())
    part = pd.Series(pd.arrays.ArrowStringArray(whole.slice(1).cast(pa.string())))
    assert arrowtext.member_codes(np.zeros(4, dtype=np.int64), part).tolist() == [0, 1, 0, -1]
    offsets, data, valid = arrowtext.buffers(whole.slice(1))
    assert offsets.dtype == np.int64 and valid.tolist() == [True, True, True, False]
    assert bytes(data[offsets[0] : offsets[1]]) == b"A"
    assert arrowtext.member_codes(np.zeros(0, dtype=np.int64), pd.Series([], dtype="str")).tolist() == []


def test_one_chunk_keeps_the_text_its_type_and_index():
    chunked = pa.chunked_array([["T1", "T2"], [None, "T3"]], type=pa.large_string())
    ids = pd.Series(pd.array(chunked, dtype="str"), index=[5, 6, 7, 8], name="transaction_id")
    one = arrowtext.one_chunk(ids)
    assert isinstance(pa.array(one.array), pa.Array)  # one chunk, not a ChunkedArray
    pd.testing.assert_series_equal(one, ids)
    member = np.zeros(len(ids), dtype=np.int64)
    assert arrowtext.member_codes(member, one).tolist() == arrowtext.member_codes(member, ids).tolist() == [0, 1, -1, 3]
    single = pd.Series(["A"], dtype="str")
    assert arrowtext.one_chunk(single) is single


@pytest.mark.parametrize(
    ("texts", "clean"),
    [
        (["T1", "", "a b"], True),
        ([" T1"], False),
        (["T1\t"], False),
        (["T1\u00a0"], False),  # a multi-byte space: judged by its lead byte
        (["é"], False),  # any multi-byte edge is sent to the full strip
        (["T1", None], False),  # missing text is cleaned elsewhere
    ],
)
def test_no_edge_space_judges_first_and_last_bytes(texts, clean):
    values = pd.Series(texts, dtype="str")
    assert arrowtext.no_edge_space(values) is clean
    if clean:
        assert values.str.strip().equals(values)
    assert arrowtext.no_edge_space(pd.Series(texts, dtype=object)) is False
