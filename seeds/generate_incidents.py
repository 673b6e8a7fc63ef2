"""Generate ``seeds/incidents_synthetic.csv``: a SYNTHETIC cargo-theft incident layer.

THE DATA IS SYNTHETIC. No row is a real incident; it only has plausible *statistics* so
the service has something to score against out of the box.

Model (all draws from ``numpy.random.default_rng(seed)``, so the output is byte-identical
on re-runs with the same seed and inputs):

* **How many per state.** SESNSP "Robo a transportista" counts for 2023–2024 (both
  modalities) give each state's share of the national total. States that no corridor in
  ``corridors.geojson`` passes through get no incidents; their mass is spread over the
  on-corridor states in proportion to those states' own counts. ``--total`` incidents are
  split by largest remainder, so per-state counts match the shares to within one.
* **Where.** Every incident lies on a corridor of its state, at most 300 m off the line
  (normal perpendicular jitter, sd 120 m, clipped). A fraction ``HOTSPOT_SHARE`` of a
  state's incidents come from hotspot centres (the list ``HOTSPOTS``, snapped to the nearest
  corridor; a state without one gets two random centres) with a Gaussian spread of a few km
  along the road; the rest are uniform along the state's corridor length (background).
* **When.** 2023-01-01 to 2025-12-31 local time. Days are uniform with a mild weekday
  pattern (``WEEKDAY``), except that half of the hotspot incidents fall into that hotspot's
  bursts (a few episodes of days to weeks). Hours follow ``HOUR_WEIGHTS`` (night-heavy,
  peak 22:00–05:00); minutes are uniform. The local time is given the UTC offset of the
  point's IANA zone (``tzfpy.get_tz`` + ``zoneinfo``), e.g. ``2024-03-05T02:40:00-06:00``.
* **What.** ``type`` is drawn from ``TYPE_SHARES``; ``violent`` is Bernoulli with the state's
  SESNSP share of "con violencia" scaled by a per-type factor (``VIOLENT_FACTOR``).

Usage: ``python -m seeds.generate_incidents [--seed N] [--out PATH] [--total N] [--sesnsp CSV]``
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import tzfpy

from seeds import CORRIDORS_GEOJSON, INCIDENT_TYPES, INCIDENTS_COLUMNS, INCIDENTS_CSV, SEEDS_DIR

DEFAULT_SEED = 20250101
DEFAULT_TOTAL = 20_000
DEFAULT_SESNSP = SEEDS_DIR.parent.parent / "shared" / "data" / "sesnsp" / "robo_transportista_estado_anual.csv"
START, END = date(2023, 1, 1), date(2025, 12, 31)
SHARE_YEARS = ("2023", "2024")

KM_PER_DEG = 111.195
COS0 = math.cos(math.radians(23.0))  # equirectangular km frame good enough for Mexico
HOTSPOT_SHARE = 0.7
BURST_SHARE = 0.5
JITTER_SD_KM, JITTER_MAX_KM = 0.12, 0.3

# Local hour-of-day weights (0..23): night-heavy, peak 22:00-05:00.
HOUR_WEIGHTS = np.array(
    [
        7.0,
        7.0,
        7.0,
        7.0,
        6.5,
        5.5,
        4.0,
        3.0,
        2.5,
        2.2,
        2.0,
        2.0,
        2.0,
        2.0,
        2.2,
        2.5,
        2.8,
        3.2,
        3.8,
        4.5,
        5.5,
        6.2,
        7.0,
        7.0,
    ]
)
WEEKDAY = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.85, 0.75])  # Monday..Sunday
TYPE_SHARES = {"hijacking": 0.46, "theft_from_parked": 0.16, "cargo_theft": 0.20, "attempt": 0.11, "other": 0.07}
VIOLENT_FACTOR = {"hijacking": 1.2, "theft_from_parked": 0.1, "cargo_theft": 0.6, "attempt": 1.0, "other": 0.5}

# (label, lng, lat, weight, spread sd in km): centres along the corridors.
HOTSPOTS: list[tuple[str, float, float, float, float]] = [
    ("Los Reyes–Ixtapaluca (150D)", -98.93, 19.34, 3, 4),
    ("Río Frío (150D)", -98.67, 19.34, 2, 5),
    ("Cuautitlán–Tepotzotlán (57D)", -99.215, 19.68, 3, 4),
    ("Jilotepec (57D)", -99.55, 20.03, 2, 6),
    ("Ecatepec–Tecámac (85D)", -99.03, 19.62, 2, 4),
    ("Lerma–Toluca (15D)", -99.50, 19.29, 1, 5),
    ("Atlacomulco (15D/Arco Norte)", -99.87, 19.79, 1, 5),
    ("Calz. Zaragoza (CDMX)", -99.06, 19.395, 1, 3),
    ("San Martín Texmelucan (150D)", -98.44, 19.27, 3, 5),
    ("Puebla–Amozoc (150D)", -98.05, 19.03, 3, 5),
    ("Palmar de Bravo (150D)", -97.55, 18.87, 4, 6),
    ("Esperanza–Cumbres de Maltrata (150D)", -97.33, 18.84, 2, 5),
    ("Orizaba–Córdoba (150D)", -96.98, 18.90, 2, 5),
    ("La Tinaja (150D)", -96.46, 18.77, 2, 6),
    ("Palmillas–San Juan del Río (57D)", -99.97, 20.36, 3, 5),
    ("Querétaro (57D)", -100.40, 20.62, 2, 4),
    ("Celaya (45D)", -100.81, 20.53, 3, 5),
    ("Salamanca–Irapuato (45D)", -101.27, 20.62, 3, 6),
    ("Silao–León (45D)", -101.55, 21.03, 2, 6),
    ("San José Iturbide (57D)", -100.40, 21.00, 2, 5),
    ("San Luis Potosí (57D)", -100.95, 22.14, 3, 5),
    ("El Huizache (57D)", -100.46, 22.92, 2, 8),
    ("Matehuala (57D)", -100.64, 23.65, 1, 6),
    ("Zapotlanejo (15D)", -103.07, 20.62, 2, 5),
    ("Lagos de Moreno (45D)", -101.93, 21.35, 1, 6),
    ("Maravatío (15D)", -100.44, 19.89, 2, 6),
    ("Zinapécuaro (15D)", -100.83, 19.84, 1, 6),
    ("Ciénega de Flores (85D)", -100.20, 25.93, 2, 5),
    ("Sabinas Hidalgo (85D)", -100.10, 26.60, 1, 8),
    ("Nuevo Laredo approach (85D)", -99.59, 27.45, 3, 4),
    ("Reynosa (40D)", -98.35, 26.05, 2, 5),
    ("Saltillo (57/40D)", -100.98, 25.40, 2, 5),
    ("Torreón (40D)", -103.35, 25.54, 1, 5),
    ("Tizayuca (85D)", -98.97, 19.84, 2, 5),
    ("Tula (Arco Norte)", -99.25, 20.04, 2, 6),
    ("Sahagún (Arco Norte)", -98.62, 19.79, 1, 5),
    ("Calpulalpan (Arco Norte)", -98.56, 19.59, 1, 5),
    ("Culiacán (15D)", -107.39, 24.78, 1, 6),
    ("Ciudad Obregón (15D)", -109.93, 27.49, 1, 6),
    ("Ciudad Juárez south (45)", -106.45, 31.55, 1, 6),
    ("Tijuana–Tecate (2D)", -116.75, 32.53, 1, 5),
    ("Manzanillo (54D)", -104.20, 19.08, 1, 5),
]


@dataclass
class Corridor:
    """A corridor polyline in a flat km frame, with per-segment state codes."""

    xy: np.ndarray  # (n, 2) km
    seg_state: list[str]  # n-1
    cum: np.ndarray = field(init=False)  # (n,) km from the start

    def __post_init__(self) -> None:
        self.cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(self.xy, axis=0).T))])

    def point(self, s: float) -> tuple[np.ndarray, np.ndarray, str]:
        """(point, unit direction, state) at distance s along the line."""
        s = float(np.clip(s, 0.0, self.cum[-1]))
        i = min(int(np.searchsorted(self.cum, s, side="right")) - 1, len(self.seg_state) - 1)
        d = self.xy[i + 1] - self.xy[i]
        n = float(np.hypot(*d)) or 1.0
        t = (s - self.cum[i]) / n
        return self.xy[i] + d * t, d / n, self.seg_state[i]

    def project(self, p: np.ndarray) -> tuple[float, float]:
        """(distance along the line, distance off the line) of the nearest point to p."""
        a, b = self.xy[:-1], self.xy[1:]
        d = b - a
        len2 = np.maximum((d**2).sum(axis=1), 1e-12)
        t = np.clip(((p - a) * d).sum(axis=1) / len2, 0.0, 1.0)
        foot = a + d * t[:, None]
        off = np.hypot(*(foot - p).T)
        i = int(off.argmin())
        return float(self.cum[i] + t[i] * math.sqrt(len2[i])), float(off[i])


def to_km(lng: float, lat: float) -> np.ndarray:
    return np.array([lng * KM_PER_DEG * COS0, lat * KM_PER_DEG])


def to_lnglat(p: np.ndarray) -> tuple[float, float]:
    return float(p[0] / (KM_PER_DEG * COS0)), float(p[1] / KM_PER_DEG)


def load_corridors(path: Path) -> list[Corridor]:
    """Corridors with each segment split at its midpoint when its two ends differ in state."""
    out = []
    for f in json.loads(path.read_text(encoding="utf-8"))["features"]:
        coords, codes = f["geometry"]["coordinates"], f["properties"]["cve_ent"]
        xy, seg = [to_km(*coords[0])], []
        for (a, ca), (b, cb) in zip(
            zip(coords, codes, strict=True), zip(coords[1:], codes[1:], strict=True), strict=False
        ):
            if ca != cb:
                xy.append((to_km(*a) + to_km(*b)) / 2)
                seg.append(ca)
            xy.append(to_km(*b))
            seg.append(cb if ca != cb else ca)
        out.append(Corridor(np.array(xy), seg))
    return out


def sesnsp_by_state(path: Path) -> tuple[dict[str, int], dict[str, float]]:
    """(count, violent share) per state code for SHARE_YEARS; national rows excluded."""
    total: Counter[str] = Counter()
    violent: Counter[str] = Counter()
    with path.open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["n_year"] in SHARE_YEARS and r["cve_ent"] != "00":
                total[r["cve_ent"]] += int(r["n_delitos"])
                if r["modalidad"] == "Con violencia":
                    violent[r["cve_ent"]] += int(r["n_delitos"])
    return dict(total), {k: violent[k] / v if v else 0.5 for k, v in total.items()}


def allocate(counts: dict[str, int], states: set[str], total: int) -> dict[str, int]:
    """Split ``total`` over the on-corridor states by their counts (largest remainder)."""
    mass = {s: counts.get(s, 0) for s in sorted(states)}
    s_all = sum(mass.values())
    exact = {s: total * m / s_all for s, m in mass.items()}
    out = {s: math.floor(v) for s, v in exact.items()}
    for s in sorted(exact, key=lambda k: (-(exact[k] - out[k]), k))[: total - sum(out.values())]:
        out[s] += 1
    return out


@dataclass
class Hotspot:
    label: str
    corridor: int
    s: float
    weight: float
    sd_km: float
    state: str
    bursts: list[tuple[int, float]] = field(default_factory=list)  # (start day index, mean length days)


def place_hotspots(corridors: list[Corridor], rng: np.random.Generator, n_days: int) -> list[Hotspot]:
    """Snap HOTSPOTS to the corridors, add two random ones for uncovered states, draw bursts."""
    spots = []
    for label, lng, lat, w, sd in HOTSPOTS:
        p = to_km(lng, lat)
        best = min(range(len(corridors)), key=lambda i: corridors[i].project(p)[1])
        s, _ = corridors[best].project(p)
        spots.append(Hotspot(label, best, s, w, sd, corridors[best].point(s)[2]))
    covered = {h.state for h in spots}
    for state in sorted({st for c in corridors for st in c.seg_state} - covered):
        for k in range(2):
            segs = [(ci, j) for ci, c in enumerate(corridors) for j, st in enumerate(c.seg_state) if st == state]
            ci, j = segs[int(rng.integers(len(segs)))]
            c = corridors[ci]
            s = float(c.cum[j] + rng.random() * (c.cum[j + 1] - c.cum[j]))
            spots.append(Hotspot(f"auto {state}-{k + 1}", ci, s, 1.0, 5.0, state))
    for h in spots:
        for _ in range(3 + int(rng.poisson(3))):
            h.bursts.append((int(rng.integers(n_days)), float(rng.uniform(3, 12))))
    return spots


def generate(seed: int, total: int, sesnsp: Path, corridors_path: Path = CORRIDORS_GEOJSON) -> list[dict[str, str]]:
    """The synthetic incidents as CSV rows (sorted by time, ids 1..n)."""
    rng = np.random.default_rng(seed)
    corridors = load_corridors(corridors_path)
    counts, violent_share = sesnsp_by_state(sesnsp)
    states = {st for c in corridors for st in c.seg_state}
    quota = allocate(counts, states, total)
    days = [START + timedelta(days=i) for i in range((END - START).days + 1)]
    day_p = np.array([WEEKDAY[d.weekday()] for d in days])
    day_p /= day_p.sum()
    hour_p = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
    spots = place_hotspots(corridors, rng, len(days))
    types = list(TYPE_SHARES)
    type_p = np.array([TYPE_SHARES[t] for t in types])
    assert set(types) == set(INCIDENT_TYPES)

    seg_index: dict[str, tuple[list[tuple[int, int]], np.ndarray]] = {}
    for state in states:
        segs = [(ci, j) for ci, c in enumerate(corridors) for j, st in enumerate(c.seg_state) if st == state]
        lens = np.array([corridors[ci].cum[j + 1] - corridors[ci].cum[j] for ci, j in segs])
        seg_index[state] = (segs, lens / lens.sum())

    events: list[tuple[datetime, float, float, str, bool]] = []
    for state in sorted(quota):
        mine = [h for h in spots if h.state == state]
        w = np.array([h.weight for h in mine])
        segs, seg_p = seg_index[state]
        for _ in range(quota[state]):
            spot = None
            if mine and rng.random() < HOTSPOT_SHARE:
                spot = mine[int(rng.choice(len(mine), p=w / w.sum()))]
                c = corridors[spot.corridor]
                for _try in range(50):
                    pt, direc, st = c.point(spot.s + rng.normal(0.0, spot.sd_km))
                    if st == state:
                        break
                else:
                    pt, direc, _ = c.point(spot.s)
            else:
                ci, j = segs[int(rng.choice(len(segs), p=seg_p))]
                c = corridors[ci]
                pt, direc, _ = c.point(c.cum[j] + rng.random() * (c.cum[j + 1] - c.cum[j]))
            off = float(np.clip(rng.normal(0.0, JITTER_SD_KM), -JITTER_MAX_KM, JITTER_MAX_KM))
            lng, lat = to_lnglat(pt + off * np.array([-direc[1], direc[0]]))
            if spot is not None and rng.random() < BURST_SHARE:
                start, mean_len = spot.bursts[int(rng.integers(len(spot.bursts)))]
                day = days[min(len(days) - 1, start + int(rng.exponential(mean_len)))]
            else:
                day = days[int(rng.choice(len(days), p=day_p))]
            hour, minute = int(rng.choice(24, p=hour_p)), int(rng.integers(60))
            tz = ZoneInfo(tzfpy.get_tz(lng, lat))
            local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC).astimezone(tz)
            kind = types[int(rng.choice(len(types), p=type_p))]
            p_violent = min(0.98, violent_share.get(state, 0.5) * VIOLENT_FACTOR[kind])
            events.append((local, round(lat, 5), round(lng, 5), kind, bool(rng.random() < p_violent)))

    events.sort(key=lambda e: (e[0].astimezone(UTC), e[1], e[2]))
    return [
        {
            "id": str(i),
            "occurred_at": t.isoformat(),
            "latitude": f"{lat:.5f}",
            "longitude": f"{lng:.5f}",
            "type": kind,
            "violent": "true" if v else "false",
            "source": "synthetic-seed",
        }
        for i, (t, lat, lng, kind, v) in enumerate(events, start=1)
    ]


def state_report(rows: list[dict[str, str]], sesnsp: Path, corridors_path: Path = CORRIDORS_GEOJSON) -> str:
    """Top states: generated share vs SESNSP share (national, and renormalised to on-corridor states)."""
    counts, _ = sesnsp_by_state(sesnsp)
    corridors = load_corridors(corridors_path)
    states = {st for c in corridors for st in c.seg_state}
    nat = sum(counts.values())
    on = sum(counts.get(s, 0) for s in states)
    got: Counter[str] = Counter()
    # re-derive each row's state from the nearest corridor segment
    for r in rows:
        p = to_km(float(r["longitude"]), float(r["latitude"]))
        best = min(corridors, key=lambda c: c.project(p)[1])
        got[best.point(best.project(p)[0])[2]] += 1
    lines = ["state  generated  SESNSP(national)  SESNSP(on-corridor)"]
    for s, n in got.most_common(5):
        lines.append(f"{s}     {n / len(rows):8.4f}  {counts.get(s, 0) / nat:16.4f}  {counts.get(s, 0) / on:19.4f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: write the synthetic incident CSV."""
    ap = argparse.ArgumentParser(description="Write the SYNTHETIC incident seed CSV.")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out", type=Path, default=INCIDENTS_CSV)
    ap.add_argument("--total", type=int, default=DEFAULT_TOTAL)
    ap.add_argument("--sesnsp", type=Path, default=DEFAULT_SESNSP, help="SESNSP robo a transportista CSV")
    ap.add_argument("--report", action="store_true", help="print the per-state share check")
    args = ap.parse_args(argv)
    rows = generate(args.seed, args.total, args.sesnsp)
    with args.out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=INCIDENTS_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} synthetic incidents to {args.out}")
    if args.report:
        print(state_report(rows, args.sesnsp))


if __name__ == "__main__":
    main()
