"""Error reports and cell-text helpers shared by the incident readers (:mod:`geodata.ingest`).

Validation is all or nothing: every bad row is collected by a :class:`_Report` as
``file:row:column`` and raised at once as an
:class:`~geodata.incidents.InvalidIncidentFileError`; the helpers turn a column of any
type a reader returns (text, numbers, booleans, timestamps) into text or numbers.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import numpy as np
import pandas as pd

from geodata.errors import Violation
from geodata.incidents import (
    IncidentSet,
    InvalidIncidentFileError,
)


@dataclass(frozen=True)
class _Loaded:
    """A file's incidents plus, per entry, the row it came from (to report cross-file duplicates)."""

    incidents: IncidentSet
    rows: np.ndarray  # int64, per entry
    id_column: str  # the file's column the ids are reported under
    records: int
    kind: str


class _Report:
    """Collects violations as ``file:row:column``; built only for the bad rows."""

    def __init__(self, name: str, rows: np.ndarray, columns: Mapping[str, str]) -> None:
        self.name = name
        self.rows = rows
        self.columns = dict(columns)
        self.order = {canon: i for i, canon in enumerate(self.columns)}
        self.items: list[tuple[int, int, Violation]] = []

    def add(
        self,
        mask: np.ndarray | pd.Series,
        canon: str,
        values: np.ndarray | pd.Series,
        describe: Callable[[object], str],
    ) -> None:
        self.add_each(mask, canon, values, None, lambda v, _: describe(v))

    def add_each(
        self,
        mask: np.ndarray | pd.Series,
        canon: str,
        values: np.ndarray | pd.Series,
        extra: Iterable[object] | None,
        describe: Callable[[object, object], str],
    ) -> None:
        where = np.flatnonzero(np.asarray(mask, dtype=bool))
        if where.size == 0:
            return
        column = self.columns.get(canon, canon)
        order = self.order.get(canon, len(self.order))
        picked = values.to_numpy(dtype=object)[where] if isinstance(values, pd.Series) else np.asarray(values)[where]
        others = repeat_none(where.size) if extra is None else extra
        for i, value, other in zip(where.tolist(), picked.tolist(), others, strict=True):
            row = int(self.rows[i])
            self.items.append((row, order, Violation(f"{self.name}:{row}:{column}", describe(_plain(value), other))))

    def raise_if_any(self) -> None:
        if self.items:
            self.items.sort(key=lambda item: (item[0], item[1]))
            raise InvalidIncidentFileError([v for _, _, v in self.items])


def repeat_none(n: int) -> Iterable[None]:
    return [None] * n


def _plain(value: object) -> object:
    """NaN/None/NA as ''; numpy scalars as Python values, so ``!r`` shows what the file held."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return value.item() if isinstance(value, np.generic) else value


def _text(series: pd.Series) -> pd.Series:
    """A column as text ("" where missing), whatever type the file gave it."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.map({True: "true", False: "false"}).fillna("").astype(object)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series.map(lambda t: "" if pd.isna(t) else t.isoformat()).astype(object)
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        if np.all(values[finite] == np.round(values[finite])):
            text = pd.Series([str(int(v)) if f else "" for v, f in zip(values, finite, strict=True)], dtype=object)
            return text.set_axis(series.index)
        return series.map(lambda v: "" if pd.isna(v) else repr(float(v))).astype(object)
    if pd.api.types.is_string_dtype(series.dtype):
        return series.fillna("") if series.hasnans else series
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.astype(object).where(series.notna(), "").astype(str)
    return series.map(_cell_text).astype(object)


def _cell_text(value: object) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and np.isnan(value):
        return ""
    if hasattr(value, "isoformat"):
        # hasattr() leaves isoformat() untyped; datetime, date, time and pd.Timestamp give str
        return cast("str", value.isoformat())
    return str(value)


def _numbers(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series.dtype):
        return np.full(len(series), np.nan)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return cast("np.ndarray", series.to_numpy(dtype=np.float64, na_value=np.nan))  # pandas is untyped: Any
    numbers = pd.to_numeric(_text(series), errors="coerce")
    return cast("np.ndarray", numbers.to_numpy(dtype=np.float64, na_value=np.nan))  # pandas is untyped: Any


def _map_distinct(series: pd.Series, func: Callable[[object], float]) -> np.ndarray:
    """``func`` applied once per distinct value (NaN/None included), as a float64 array."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.array([func(u) for u in uniques] + [func(None)], dtype=np.float64)
    # code -1 (missing) picks the last entry; pandas is untyped, so indexing by its codes is Any
    return cast("np.ndarray", table[codes])


def _now(now_s: int | None) -> int:
    return int(time.time()) if now_s is None else int(now_s)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


@lru_cache(maxsize=4096)
def _norm_cached(text: str) -> str:
    stripped = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[\s._]+", " ", stripped.lower()).strip()


def _norm(text: object) -> str:
    """Lower case, accents dropped ("Año" → "ano"), runs of spaces, dots and underscores → one space."""
    return _norm_cached(str(text))
