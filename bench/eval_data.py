"""Seeded evaluation data for the risk model, and the best possible forecast of it.

``python -m bench.eval_data --seed 1 --out eval1.csv`` writes canonical incidents made by a
documented process with the properties of real hijacking data; :func:`best_forecast` gives,
for any test window, the expected incidents per H3 cell *of that process* given its history
(the forecast no model can beat on average), for the backtest's "best" row.

The process (all times UTC, local time = UTC−6, central Mexico, no daylight saving):

* **Corridors**: five road polylines across central Mexico; every incident lies near one.
* **Hotspots** (``N_HOTSPOTS``): a centre on a corridor, a spatial spread of 0.3–0.8 km
  (isotropic Gaussian), a peak rate drawn log-normally (mean ≈ 0.02/day), and a life:
  *stable* (40 %), *emerging* (30 %: zero until a random day, then a linear ramp to the peak
  over 60–240 days) or *fading* (30 %: peak until a random day, then exponential decay with
  a 30–150-day time constant).
* **Diffuse background**: ``DIFFUSE_PER_DAY`` incidents/day spread uniformly along the corridors.
* **Near repeats**: every incident (background or triggered) triggers Poisson(``BRANCHING``)
  offspring after Exp(mean ``TRIGGER_DAYS``) days, Gaussian ``TRIGGER_KM`` km away (ETAS-like
  cascade, Mohler et al. 2011).
* **Hours**: night-heavy local hour of day (peak 22:00–04:00), uniform minutes.
* **Approximate coordinates**: the written position is the true one plus Gaussian
  ``REPORT_KM`` km noise, rounded to 3 decimals (~100 m).

Expected counts (:func:`best_forecast`) are computed by Monte-Carlo: the future window is
simulated ``replicates`` times from the true intensity and the real history (offspring of
past incidents included) and the cell counts are averaged.
"""

from __future__ import annotations

import argparse
import csv
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import h3.api.basic_int as h3i
import numpy as np

START = datetime(2022, 1, 1, tzinfo=UTC)
DAYS = 3 * 365
N_HOTSPOTS = 80
DIFFUSE_PER_DAY = 0.6
BRANCHING = 0.35
TRIGGER_DAYS = 6.0
TRIGGER_KM = 0.4
REPORT_KM = 0.3
KM_PER_DEG = 111.2
LOCAL = timezone(timedelta(hours=-6))
CORRIDORS = (
    ((19.60, -99.20), (20.05, -99.60), (20.59, -100.39), (21.12, -101.68)),
    ((19.40, -99.00), (19.05, -98.20), (18.85, -97.10)),
    ((20.59, -100.39), (21.88, -100.90), (22.15, -100.98)),
    ((19.60, -99.20), (20.10, -98.75), (20.50, -98.40)),
    ((20.67, -103.35), (20.55, -102.20), (20.59, -100.39)),
)
HOUR_WEIGHTS = np.array([6, 6, 5, 5, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4, 5, 6, 6], dtype=float)


@dataclass(frozen=True)
class World:
    """The hidden process of one seed (hotspots and their lives)."""

    seed: int
    centre_lat: np.ndarray
    centre_lng: np.ndarray
    spread_km: np.ndarray
    peak: np.ndarray  # incidents/day at full strength
    kind: np.ndarray  # 0 stable, 1 emerging, 2 fading
    change_day: np.ndarray
    ramp_days: np.ndarray  # emerging: ramp length; fading: decay time constant

    def hotspot_rates(self, day: np.ndarray) -> np.ndarray:
        """Rate of each hotspot (columns) on each day (rows), incidents/day."""
        d = np.asarray(day, dtype=float)[:, None]
        ramp = np.clip((d - self.change_day) / self.ramp_days, 0.0, 1.0)
        fade = np.where(d < self.change_day, 1.0, np.exp(-(d - self.change_day) / self.ramp_days))
        level = np.where(self.kind == 0, 1.0, np.where(self.kind == 1, ramp, fade))
        return self.peak * level


def make_world(seed: int) -> World:
    rng = np.random.default_rng(seed)
    lat, lng = _on_corridors(rng, N_HOTSPOTS)
    kind = rng.choice(3, N_HOTSPOTS, p=[0.4, 0.3, 0.3])
    change = rng.uniform(0.25 * DAYS, 0.9 * DAYS, N_HOTSPOTS)
    ramp = np.where(kind == 1, rng.uniform(60, 240, N_HOTSPOTS), rng.uniform(30, 150, N_HOTSPOTS))
    peak = rng.lognormal(np.log(0.015), 0.8, N_HOTSPOTS)
    return World(seed, lat, lng, rng.uniform(0.3, 0.8, N_HOTSPOTS), peak, kind, change, ramp)


def _on_corridors(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform along the corridors (by length)."""
    segments = [(a, b) for line in CORRIDORS for a, b in itertools.pairwise(line)]
    lengths = np.array([np.hypot(b[0] - a[0], b[1] - a[1]) for a, b in segments])
    pick = rng.choice(len(segments), n, p=lengths / lengths.sum())
    t = rng.uniform(0, 1, n)
    a = np.array([segments[i][0] for i in pick])
    b = np.array([segments[i][1] for i in pick])
    return a[:, 0] + t * (b[:, 0] - a[:, 0]), a[:, 1] + t * (b[:, 1] - a[:, 1])


def _jitter(rng, lat, lng, km):
    return lat + rng.normal(0, km / KM_PER_DEG, len(lat)), lng + rng.normal(0, km / KM_PER_DEG, len(lng))


def _background(world: World, rng: np.random.Generator, day0: float, day1: float):
    """Immigrant incidents (hotspots + diffuse) in [day0, day1): (day, lat, lng)."""
    days = np.arange(np.floor(day0), np.ceil(day1))
    rates = world.hotspot_rates(days + 0.5)
    counts = rng.poisson(rates)
    d_idx, h_idx = np.nonzero(counts)
    reps = counts[d_idx, h_idx]
    d_idx, h_idx = np.repeat(d_idx, reps), np.repeat(h_idx, reps)
    t = days[d_idx] + rng.uniform(0, 1, len(d_idx))
    lat, lng = _jitter(rng, world.centre_lat[h_idx], world.centre_lng[h_idx], 1.0)
    # per-hotspot spread: rescale the unit jitter
    lat = world.centre_lat[h_idx] + (lat - world.centre_lat[h_idx]) * world.spread_km[h_idx]
    lng = world.centre_lng[h_idx] + (lng - world.centre_lng[h_idx]) * world.spread_km[h_idx]
    n_diffuse = rng.poisson(DIFFUSE_PER_DAY * (day1 - day0))
    dl, dg = _on_corridors(rng, n_diffuse)
    dt = rng.uniform(day0, day1, n_diffuse)
    t, lat, lng = np.concatenate([t, dt]), np.concatenate([lat, dl]), np.concatenate([lng, dg])
    keep = (t >= day0) & (t < day1)
    return t[keep], lat[keep], lng[keep]


def _cascade(rng, t, lat, lng, day1: float, day_from: float = -np.inf):
    """All offspring (recursively) of the given incidents that happen before ``day1`` (and after ``day_from``)."""
    out_t, out_lat, out_lng = [], [], []
    parents = (t, lat, lng)
    while len(parents[0]):
        k = rng.poisson(BRANCHING, len(parents[0]))
        idx = np.repeat(np.arange(len(k)), k)
        ct = parents[0][idx] + rng.exponential(TRIGGER_DAYS, len(idx))
        clat, clng = _jitter(rng, parents[1][idx], parents[2][idx], TRIGGER_KM)
        keep = (ct < day1) & (ct >= day_from)  # earlier offspring of real history are in the data already
        parents = (ct[keep], clat[keep], clng[keep])
        out_t.append(parents[0])
        out_lat.append(parents[1])
        out_lng.append(parents[2])
    if not out_t:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    t2, a2, g2 = (np.concatenate(x) for x in (out_t, out_lat, out_lng))
    return t2, a2, g2


def simulate(seed: int) -> dict[str, np.ndarray]:
    """The incidents of one seed: true day (float), true and reported positions, local hour."""
    world = make_world(seed)
    rng = np.random.default_rng(seed + 10_000)
    t, lat, lng = _background(world, rng, 0.0, DAYS)
    ct, clat, clng = _cascade(rng, t, lat, lng, DAYS)
    t, lat, lng = np.concatenate([t, ct]), np.concatenate([lat, clat]), np.concatenate([lng, clng])
    order = np.argsort(t, kind="stable")
    t, lat, lng = t[order], lat[order], lng[order]
    # night-heavy local hour: replace the time of day, keep the day
    hour = rng.choice(24, len(t), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    minute = rng.integers(0, 60, len(t))
    local_day = np.floor(t)
    t = local_day + (hour * 60 + minute) / 1440.0
    rlat, rlng = _jitter(rng, lat, lng, REPORT_KM)
    return {"day": t, "lat": lat, "lng": lng, "report_lat": np.round(rlat, 3), "report_lng": np.round(rlng, 3)}


def day_to_epoch(day: np.ndarray) -> np.ndarray:
    """Simulation days (local, UTC−6 wall clock) → UTC epoch seconds."""
    return (int(START.timestamp()) + np.asarray(day) * 86400 + 6 * 3600).astype(np.int64)


def epoch_to_day(epoch_s: int) -> float:
    return (epoch_s - int(START.timestamp()) - 6 * 3600) / 86400.0


def write_csv(data: dict[str, np.ndarray], path: Path) -> int:
    """Canonical incident CSV (``occurred_at`` with the -06:00 offset)."""
    epoch = day_to_epoch(data["day"])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "occurred_at", "latitude", "longitude", "type", "violent", "source"])
        for i, (e, a, g) in enumerate(
            zip(epoch.tolist(), data["report_lat"].tolist(), data["report_lng"].tolist(), strict=False)
        ):
            when = datetime.fromtimestamp(e, UTC).astimezone(LOCAL).isoformat()
            out.writerow(
                [f"e{i}", when, f"{a:.3f}", f"{g:.3f}", "hijacking", "true" if i % 3 == 0 else "false", "eval"]
            )
    return len(epoch)


def best_forecast(
    seed: int, data: dict[str, np.ndarray], origin_s: int, end_s: int, resolution: int = 8, replicates: int = 60
) -> tuple[np.ndarray, np.ndarray]:
    """(cells, expected incidents) in ``[origin_s, end_s)`` given the true history before ``origin_s``."""
    world = make_world(seed)
    rng = np.random.default_rng(seed * 7919 + origin_s % 100_003)
    d0, d1 = epoch_to_day(origin_s), epoch_to_day(end_s)
    past = data["day"] < d0
    cells: list[np.ndarray] = []
    for _ in range(replicates):
        t, lat, lng = _background(world, rng, d0, d1)
        _ct, clat, clng = _cascade(rng, t, lat, lng, d1)
        # offspring of the real history landing in the window (and their own offspring)
        _ht, hlat, hlng = _cascade(rng, data["day"][past], data["lat"][past], data["lng"][past], d1, day_from=d0)
        lat = np.concatenate([lat, clat, hlat])
        lng = np.concatenate([lng, clng, hlng])
        rlat, rlng = _jitter(rng, lat, lng, REPORT_KM)
        rlat, rlng = np.round(rlat, 3), np.round(rlng, 3)
        cells.append(
            np.array(
                [h3i.latlng_to_cell(a, b, resolution) for a, b in zip(rlat.tolist(), rlng.tolist(), strict=False)],
                np.uint64,
            )
        )
    everything = np.concatenate(cells)
    unique, counts = np.unique(everything, return_counts=True)
    return unique, counts / replicates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    n = write_csv(simulate(args.seed), args.out)
    print(f"{n} incidents written to {args.out}")


if __name__ == "__main__":
    main()
