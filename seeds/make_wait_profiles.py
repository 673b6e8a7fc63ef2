"""Write ``seeds/wait_profiles.json``: DEFAULT hour-of-week commercial wait profiles (minutes),
and ``seeds/port_hours.csv``: each port's commercial hours.

These are default profiles, not measurements. Shape: one weekday curve (low at night, rising
from the opening hour, peak late morning to mid afternoon, falling in the evening) times a day
factor (Fri highest, Sat ~0.55, Sun ~0.25), with a queue at the opening hour. While the
commercial lanes are closed (the CBP ``hours`` of the crossing; Saturday closes at 16:00 at
ports that are not 24 h) a profile holds the queue met at the next opening, never 0: a truck
arriving then waits for the opening (``port_hours.csv``, geodata/border.py) and then queues.
The peak per port is the mean of a size prior (``12 + 4.5 × commercial lanes``, ×1.25 for the
five biggest cargo ports) and the peak implied by the standard-lane ``delay_minutes`` in the
CBP samples (a delay seen at hour h divided by the curve at h; clipped to 0.5–1.5× the prior).
FAST lanes are the standard profile times the FAST/standard ratio seen in the samples, clipped
to 0.4–0.6 (0.5 when unseen); ports without FAST lanes get ``fast == standard``. Deterministic:
no randomness.

Usage: ``python -m seeds.make_wait_profiles [--data ../shared/data]``
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path

from seeds import PORT_HOURS_CSV, PORTS_CSV, SEEDS_DIR, WAIT_PROFILES_JSON

DEFAULT_DATA = SEEDS_DIR.parent.parent / "shared" / "data"
SAMPLES = ("bwtnew-2022-06-29.json", "bwtpublicmod-all-2022-06-30.json")  # both Wed/Thu
MAJOR = {"230404", "250602", "240203", "240201", "230502"}  # WTB, Otay Mesa, Ysleta, BOTA, Pharr

# Weekday shape by local hour (1.0 = peak), and day factors Monday..Sunday.
HOUR_SHAPE = [
    0.08,
    0.08,
    0.08,
    0.08,
    0.08,
    0.1,
    0.25,
    0.45,
    0.62,
    0.78,
    0.9,
    0.98,
    1.0,
    1.0,
    0.97,
    0.92,
    0.85,
    0.75,
    0.6,
    0.45,
    0.32,
    0.22,
    0.15,
    0.1,
]
DAY_FACTOR = [1.0, 0.95, 0.95, 1.0, 1.05, 0.55, 0.25]
OPENING_QUEUE = 0.7
SATURDAY_CLOSE = 16


def parse_hours(text: str) -> tuple[int, int]:
    """CBP ``hours`` such as '6 am-10 pm', '7 am-Midnight', '24 hrs/day' -> (open, close) hours."""
    if "24" in text:
        return 0, 24

    def one(t: str) -> int:
        t = t.strip().lower()
        if t == "midnight":
            return 24
        if t == "noon":
            return 12
        m = re.fullmatch(r"(\d+)(?::\d+)?\s*(am|pm)", t)
        if not m:
            raise ValueError(f"unparsed hours: {text!r}")
        h = int(m.group(1)) % 12
        return h + (12 if m.group(2) == "pm" else 0)

    a, b = text.split("-")
    return one(a), one(b)


def parse_update_hour(text: str) -> int | None:
    """'At Noon CDT' / 'At 10:00 am PDT' -> local hour, None if empty."""
    m = re.match(r"At (Noon|Midnight|\d+(?::\d+)?\s*[ap]m)", text.strip())
    if not m:
        return None
    return parse_hours(f"{m.group(1)}-noon")[0] % 24


def observations(data: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """port -> {'standard'|'fast': [(local hour, delay minutes), ...]} from the CBP samples."""
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for name in SAMPLES:
        for p in json.loads((data / "cbp" / name).read_text()):
            cv = p["commercial_vehicle_lanes"]
            for lane, key in (("standard", "standard_lanes"), ("fast", "FAST_lanes")):
                d, hour = cv[key]["delay_minutes"], parse_update_hour(cv[key]["update_time"])
                if d.isdigit() and hour is not None:
                    out.setdefault(p["port_number"], {}).setdefault(lane, []).append((hour, float(d)))
    return out


def hours_by_port(data: Path) -> dict[str, str]:
    return {p["port_number"]: p["hours"] for p in json.loads((data / "cbp" / SAMPLES[0]).read_text())}


def peak_minutes(port: str, lanes: int, seen: list[tuple[int, float]]) -> float:
    """Weekday peak standard wait for a port."""
    prior = (12 + 4.5 * lanes) * (1.25 if port in MAJOR else 1.0)
    if not seen:
        return prior
    implied = max(d / HOUR_SHAPE[h] for h, d in seen)
    return (prior + min(max(implied, 0.5 * prior), 1.5 * prior)) / 2


def fast_ratio(obs: dict[str, list[tuple[int, float]]]) -> float:
    std = dict(obs.get("standard", []))
    ratios = [f / std[h] for h, f in obs.get("fast", []) if std.get(h)]
    r = sum(ratios) / len(ratios) if ratios else 0.5
    return min(max(r, 0.4), 0.6)


def profile(peak: float, open_h: int, close_h: int) -> list[float]:
    """168 hour-of-week values (0 = Monday 00:00 local); a closed hour holds the next opening's."""
    out: list[float | None] = []
    for day in range(7):
        close = close_h if (open_h, close_h) == (0, 24) or day != 5 else min(close_h, SATURDAY_CLOSE)
        for h in range(24):
            if not open_h <= h < close:
                out.append(None)
                continue
            f = HOUR_SHAPE[h]
            if h == open_h and (open_h, close_h) != (0, 24):
                f = max(f, OPENING_QUEUE)
            out.append(round(peak * f * DAY_FACTOR[day], 1))
    return _closed_hours_filled(out)


def _closed_hours_filled(values: list[float | None]) -> list[float]:
    """Each closed hour (None) gets the value of the next open hour, round the week."""
    following = next(v for v in values if v is not None)  # the week's first open value, round the week
    filled: list[float] = []
    for value in reversed(values):
        following = following if value is None else value
        filled.append(following)
    return filled[::-1]


def build(data: Path) -> dict:
    """The wait-profile document."""
    obs, hours = observations(data), hours_by_port(data)
    with PORTS_CSV.open(encoding="utf-8") as fh:
        ports = list(csv.DictReader(fh))
    doc: dict = {
        "label": "default profile (synthetic, not measured)",
        "hour_of_week": "0 = Monday 00:00 local time of the port",
        "units": "minutes; a closed hour holds the queue at the next opening (hours: port_hours.csv)",
        "method": "seeds/make_wait_profiles.py: shaped curve scaled by port size and CBP sample delays (2022-06-29/30)",
        "port_hours": {},
        "ports": {},
    }
    for p in sorted(ports, key=lambda r: r["port_number"]):
        num = p["port_number"]
        o = obs.get(num, {})
        open_h, close_h = parse_hours(hours[num])
        std = profile(peak_minutes(num, int(p["commercial_lanes"]), o.get("standard", [])), open_h, close_h)
        fast = [round(v * fast_ratio(o), 1) for v in std] if int(p["fast_lanes"]) > 0 else list(std)
        doc["port_hours"][num] = hours[num]
        doc["ports"][num] = {"standard": std, "fast": fast}
    return doc


HOURS_SOURCE = (
    "CBP BWT bwtnew 2022-06-29 `hours` (one text for all days); Saturday closing at 16:00 assumed "
    "for ports not open 24 h"
)


def write_port_hours(hours: dict[str, str], out: Path) -> None:
    """``port_hours.csv``: per port, the commercial hours of a weekday, a Saturday and a Sunday."""
    with out.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["port_number", "weekday", "saturday", "sunday", "source"])
        for num, text in sorted(hours.items()):
            open_h, close_h = parse_hours(text)
            always = (open_h, close_h) == (0, 24)
            day = "24h" if always else f"{open_h:02d}:00-{close_h:02d}:00"
            saturday = day if always else f"{open_h:02d}:00-{min(close_h, SATURDAY_CLOSE):02d}:00"
            w.writerow([num, day, saturday, day, HOURS_SOURCE])


def dumps(doc: dict) -> str:
    """JSON with one line per port (compact lists, stable and diff-friendly)."""
    head = {k: v for k, v in doc.items() if k != "ports"}
    lines = [json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "ports": {']
    items = [f'  "{num}": {json.dumps(lanes, separators=(",", ":"))}' for num, lanes in doc["ports"].items()]
    lines.append(",\n".join(items))
    lines.append(" }\n}\n")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: write wait_profiles.json."""
    ap = argparse.ArgumentParser(description="Write the DEFAULT (not measured) wait profiles.")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared/data folder")
    ap.add_argument("--out", type=Path, default=WAIT_PROFILES_JSON)
    args = ap.parse_args(argv)
    doc = build(args.data)
    args.out.write_text(dumps(doc), encoding="utf-8")
    write_port_hours(doc["port_hours"], PORT_HOURS_CSV)
    for num, lanes in doc["ports"].items():
        std, fast = max(lanes["standard"]), max(lanes["fast"])
        print(f"{num}  peak standard {std:5.1f}  fast {fast:5.1f}  {doc['port_hours'][num]}")


if __name__ == "__main__":
    main()
