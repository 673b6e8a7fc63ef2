"""CBP Border Wait Times: historical hourly averages → hour-of-week wait profiles.

CBP's historical wait-time export, one row per day of week and hour: ``bwt_day``,
``time_slot``, ``cv_time_avg`` (commercial standard) and ``xcv_time_avg`` (commercial FAST),
optionally ``port_number``; other columns are ignored. CSV, or the JSON of
``/api/historicalwaittimes`` (``{"wait_times": [...]}`` or a bare array). See
:func:`parse_historical` for the accepted day and hour spellings.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from geodata.border import LANES
from geodata.bounded import check_size, load_json
from geodata.bounded import field_limit as _field_limit
from geodata.cbp_feed import _NUMBER, InvalidFeedError, _decode, _kind
from geodata.errors import Violation

HOURS_PER_WEEK = 168
# historical column -> our lane name
HISTORICAL_COLUMNS = (("cv_time_avg", "standard"), ("xcv_time_avg", "fast"))

_DAY_NAMES = {
    name: index
    for index, names in enumerate(
        (
            ("monday", "mon", "mo"),
            ("tuesday", "tue", "tues", "tu"),
            ("wednesday", "wed", "we"),
            ("thursday", "thu", "thur", "thurs", "th"),
            ("friday", "fri", "fr"),
            ("saturday", "sat", "sa"),
            ("sunday", "sun", "su"),
        )
    )
    for name in names
}
_SLOT = re.compile(
    r"""^\s*(?P<h>\d{1,2})(?:\s*:?\s*(?P<m>\d{2}))?\s*(?:(?P<ampm>[ap])\.?\s*m\.?)?
    (?:\s*(?:-|–|to)\s*\d{1,2}(?:\s*:?\s*\d{2})?\s*(?:[ap]\.?\s*m\.?)?)?\s*$""",
    re.IGNORECASE | re.VERBOSE | re.ASCII,
)
_SLOT_WORDS = {"midnight": 0, "noon": 12}
_BLANK = {"", "n/a", "na", "null", "none", "-"}
# bounds on an export before it is parsed: a year of quarter-hour rows of one port is ~4 MB
MAX_HISTORY_BYTES = 64 << 20
MAX_HISTORY_VALUES = 4_000_000
MAX_FIELD_CHARS = 1024  # a CSV cell: a day, a slot, a number of minutes


def parse_historical(text: str | bytes, *, port_number: str | None = None) -> dict[tuple[str, str], np.ndarray]:
    """Mean commercial waits by local hour of week from CBP's historical export.

    Returns ``(port_number, lane) -> 168 floats`` (index 0 = Monday 00:00 local time of the
    port; NaN where the export has no figure), for lane ``"standard"`` (column ``cv_time_avg``)
    and ``"fast"`` (``xcv_time_avg``) when that column is present. Rows naming the same port,
    day and hour (several months, quarter-hour slots) are averaged.

    * ``bwt_day``: a day name or abbreviation (``Monday``, ``Mon``, ``Thurs``...), or a number.
      Numbers follow CBP's own numbering, **0 = Monday ... 6 = Sunday**; a file whose numbers run
      1..7 (a 7 and no 0) is read as ISO, **1 = Monday ... 7 = Sunday**.
    * ``time_slot``: the hour the slot starts: ``13``, ``13:00``, ``1300``, ``1 PM``, ``1:00 pm``,
      ``Noon``, ``Midnight``, or a range such as ``13:00-13:59`` / ``1300-1400`` / ``1 pm - 2 pm``.
    * values: minutes, ``>= 0``; blank, ``N/A``, ``null`` or ``-`` is no figure (NaN).
    * ``port_number``: the column if present (``port_number`` argument then selects that port);
      otherwise every row belongs to the ``port_number`` argument.

    CSV (comma-separated, header row, UTF-8 with or without BOM) or the JSON of
    ``/api/historicalwaittimes`` (``{"wait_times": [rows]}`` or a bare array of rows).
    Raises :class:`InvalidFeedError` naming every bad row and column.
    """
    violations: list[Violation] = []
    check_size(text, "feed", MAX_HISTORY_BYTES, InvalidFeedError)
    rows = _historical_rows(_decode(text), violations)
    if violations:
        raise InvalidFeedError(violations)
    if not rows:
        raise InvalidFeedError(Violation("feed", "no data rows"))
    columns = {c for row in rows for c in row}
    missing = [c for c in ("bwt_day", "time_slot") if c not in columns]
    lanes = [(column, lane) for column, lane in HISTORICAL_COLUMNS if column in columns]
    if not lanes:
        missing.append("cv_time_avg or xcv_time_avg")
    if "port_number" not in columns and port_number is None:
        missing.append("port_number (or the port_number argument)")
    if missing:
        raise InvalidFeedError([Violation("feed", f"missing column {m!r}") for m in missing])

    raw_days = [(row.get("bwt_day") or "").strip() for row in rows]
    numeric = [int(d) for d in raw_days if d.isascii() and d.isdigit()]
    iso_numbers = 7 in numeric and 0 not in numeric
    sums: dict[tuple[str, str], np.ndarray] = {}
    counts: dict[tuple[str, str], np.ndarray] = {}
    wanted = port_number.strip() if port_number is not None else None
    for index, (row, day_text) in enumerate(zip(rows, raw_days, strict=True)):
        path = f"rows[{index}]"
        label = f"row {index + 1}"
        number = (row.get("port_number") or "").strip() or wanted
        if number is None:
            violations.append(Violation(f"{path}.port_number", f"{label}: port_number is empty"))
            continue
        if wanted is not None and number != wanted:
            continue
        day = _parse_day(day_text, iso_numbers)
        if day is None:
            violations.append(Violation(f"{path}.bwt_day", f"{label}: bwt_day {day_text!r} is not a day of the week"))
        slot_text = (row.get("time_slot") or "").strip()
        hour = _parse_slot(slot_text)
        if hour is None:
            violations.append(Violation(f"{path}.time_slot", f"{label}: time_slot {slot_text!r} is not an hour"))
        values: list[tuple[str, float]] = []
        for column, lane in lanes:
            value_text = (row.get(column) or "").strip()
            if value_text.lower() in _BLANK:
                continue
            if not _NUMBER.match(value_text):
                violations.append(
                    Violation(f"{path}.{column}", f"{label}: {column} {value_text!r} is not a number of minutes")
                )
                continue
            values.append((lane, float(value_text)))
        if day is None or hour is None:
            continue
        how = day * 24 + hour
        for _, lane in lanes:
            key = (number, lane)
            if key not in sums:
                sums[key] = np.zeros(HOURS_PER_WEEK)
                counts[key] = np.zeros(HOURS_PER_WEEK)
        for lane, value in values:
            sums[number, lane][how] += value
            counts[number, lane][how] += 1
    if violations:
        raise InvalidFeedError(violations)
    if not sums:
        raise InvalidFeedError(Violation("port_number", f"no rows for port {wanted!r}"))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {key: np.where(counts[key] > 0, sums[key] / counts[key], np.nan) for key in sorted(sums)}


def _historical_rows(source: str, violations: list[Violation]) -> list[dict[str, str]]:
    """Rows as ``column -> text`` (lower-case column names); row 1 is the first data row."""
    head = source.lstrip()[:1]
    if head in ("[", "{"):
        try:
            document = load_json(
                source, "feed", max_chars=MAX_HISTORY_BYTES, max_items=MAX_HISTORY_VALUES, error=InvalidFeedError
            )
        except InvalidFeedError as exc:
            raise InvalidFeedError(
                [Violation(v.field, v.description.removeprefix("is ")) for v in exc.violations]
            ) from None
        items = document.get("wait_times") if isinstance(document, dict) else document
        if not isinstance(items, list):
            raise InvalidFeedError(Violation("feed", "expected an array of rows or {'wait_times': [rows]}"))
        rows = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidFeedError(Violation(f"rows[{index}]", f"expected an object, got {_kind(item)}"))
            rows.append({str(k).strip().lower(): _cell(v) for k, v in item.items()})
        return rows
    try:
        reader = csv.reader(io.StringIO(source, newline=""))
        with _field_limit(MAX_FIELD_CHARS):
            table = list(reader)
    except csv.Error as exc:
        raise InvalidFeedError(Violation("feed", f"cannot read the CSV: {exc}")) from None
    table = [line for line in table if any(cell.strip() for cell in line)]
    if not table:
        return []
    header = [cell.strip().lower() for cell in table[0]]
    rows = []
    for index, line in enumerate(table[1:]):
        if len(line) > len(header):
            violations.append(Violation(f"rows[{index}]", f"row {index + 1} has more cells than the header"))
        rows.append(dict(zip(header, line, strict=False)))
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    return str(value)


def _parse_day(text: str, iso_numbers: bool) -> int | None:
    lowered = text.strip().lower().rstrip(".")
    if lowered in _DAY_NAMES:
        return _DAY_NAMES[lowered]
    if lowered.isascii() and lowered.isdigit():
        number = int(lowered)
        if iso_numbers:
            return number - 1 if 1 <= number <= 7 else None
        return number if 0 <= number <= 6 else None
    return None


def _parse_slot(text: str) -> int | None:
    lowered = text.strip().lower()
    if lowered in _SLOT_WORDS:
        return _SLOT_WORDS[lowered]
    match = _SLOT.match(text)
    if match is None:
        return None
    hour, minute = int(match["h"]), int(match["m"] or 0)
    if minute > 59:
        return None
    if match["ampm"]:
        if not 1 <= hour <= 12:
            return None
        return hour % 12 + (12 if match["ampm"].lower() == "p" else 0)
    return hour if hour <= 23 else None


# ----------------------------------------------------------------------------- profiles document


def profiles_document(profiles: Mapping[tuple[str, str], np.ndarray], *, label: str) -> dict[str, Any]:
    """The ``wait_profiles.json`` document (``load_border_data`` reads it) for these profiles.

    NaN hours are filled first with the mean of the same local hour on the days that have it,
    then (an hour of day with no figure on any day) by linear interpolation between the nearest
    hours of the week that have one, wrapping Sunday night to Monday morning. How many hours were
    filled per port and lane is recorded under ``filled_hours``; a lane with no figure at all is
    left out of ``ports`` and listed under ``empty``. Minutes are rounded to 0.1.
    """
    ports: dict[str, dict[str, list[float]]] = {}
    filled: dict[str, dict[str, int]] = {}
    empty: list[str] = []
    for (number, lane), values in sorted(profiles.items()):
        if lane not in LANES:
            raise ValueError(f"profile lane {lane!r} of port {number!r} is not one of {LANES}")
        array = np.asarray(values, dtype=np.float64)
        if array.shape != (HOURS_PER_WEEK,):
            raise ValueError(f"profile of port {number!r} lane {lane!r} has shape {array.shape}, expected (168,)")
        if np.isnan(array).all():
            empty.append(f"{number}/{lane}")
            continue
        complete, count = _fill(array)
        ports.setdefault(number, {})[lane] = [round(float(v), 1) for v in complete]
        filled.setdefault(number, {})[lane] = count
    return {
        "label": label,
        "source": "historical",
        "hour_of_week": "0 = Monday 00:00 local time of the port",
        "units": "minutes",
        "method": "geodata.cbp.profiles_document: mean of CBP historical hourly averages; missing hours from "
        "the same hour on other days, else interpolated between neighbouring hours",
        "filled_hours": filled,
        "empty": empty,
        "ports": ports,
    }


def _fill(values: np.ndarray) -> tuple[np.ndarray, int]:
    """``values`` without NaN (see :func:`profiles_document`) and how many hours were filled."""
    missing = np.isnan(values)
    if not missing.any():
        return values.copy(), 0
    week = values.reshape(7, 24)
    present = ~np.isnan(week)
    per_hour = np.where(present, week, 0.0).sum(axis=0)
    days = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        same_hour = np.where(days > 0, per_hour / days, np.nan)
    result = np.where(np.isnan(week), same_hour[np.newaxis, :], week).reshape(HOURS_PER_WEEK)
    gaps = np.isnan(result)
    if gaps.any():
        known = np.flatnonzero(~gaps)
        result[gaps] = np.interp(np.flatnonzero(gaps), known, result[known], period=HOURS_PER_WEEK)
    return result, int(missing.sum())


__all__ = ["HISTORICAL_COLUMNS", "parse_historical", "profiles_document"]
