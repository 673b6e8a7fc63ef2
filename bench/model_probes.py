"""Where the gap between the model and the best possible forecast comes from (docs/model.md §4).

``python -m bench.model_probes --seeds 1 2 3 4 5``

Not forecasts: **probes** that use what no forecast has, to bound what any forecast could gain.
Per split (the backtest's: four 90-day windows from day 730) they print the mean PAI at 1 / 5 /
10 % of the candidate area of

* ``model`` — the fit as the backtest runs it;
* ``centres+…`` — the generator's true hotspot centres and spreads (each hotspot a Gaussian of
  its spread and the report noise over the candidate cells), with rates that are ``…``:
  ``future`` the true mean rate in the test window, ``now`` the true rate at the origin,
  ``past`` the true mean rate before it, or ``data-hN`` estimated from the training incidents
  within 1.5 km of the centre, decayed with an N-day half-life (``inf``: all counted alike).
  ``future`` ≈ the ``best`` row; ``past`` is what the long-run rates are worth with perfect
  spatial knowledge; ``data-hN`` what the data say about each hotspot's current rate when the
  hotspot's extent is known;
* ``hindsight recipe`` — 48 decayed-count maps (cell, ring, wide, half cell + half ring; half-lives
  30 … 1460 days; with and without a square-root trend) and, per seed, the one with the best
  mean PAI at 5 % *on the test windows*: an upper bound for choosing among such recipes per
  data set (stacking), which the fit's mixture already spans; ``hindsight max`` — per split and
  area fraction the best of the 48 on the test window itself (a bound no method attains).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import h3.api.basic_int as h3i
import numpy as np

from bench import eval_data
from geodata.backtest import _model_scores, candidate_cells
from geodata.incidents import IncidentSet
from geodata.ingest import read_point_incidents
from geodata.layers import BuildParams, _cells_of
from geodata.mixture import Disks, kernel_rates
from geodata.ranking import AREA_FRACTIONS, hit_rates

SPLITS = 4
TEST_DAYS = 90
FIRST_ORIGIN_DAY = 730
KM_PER_DEG_LNG = eval_data.KM_PER_DEG * math.cos(math.radians(20.0))  # the corridors lie at 18–22° N
MEMBER_KM = 1.5
DATA_HALF_LIVES = (60.0, 120.0, 365.0, math.inf)
RECIPE_HALF_LIVES = (30.0, 90.0, 180.0, 365.0, 730.0, 1460.0)


def pai(scores: np.ndarray, mass: np.ndarray, total: float) -> np.ndarray:
    """PAI at the backtest's area fractions."""
    return hit_rates(scores, mass, AREA_FRACTIONS, total=total) / np.array(AREA_FRACTIONS)


def hotspot_map(world: eval_data.World, rates: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Expected incidents per cell (up to a constant) of hotspots with these rates at their true place."""
    centres = np.array([h3i.cell_to_latlng(int(c)) for c in cells.tolist()])
    dy = (centres[:, :1] - world.centre_lat[None, :]) * eval_data.KM_PER_DEG
    dx = (centres[:, 1:] - world.centre_lng[None, :]) * KM_PER_DEG_LNG
    var = world.spread_km**2 + eval_data.REPORT_KM**2
    density = np.exp(-(dx**2 + dy**2) / (2 * var[None, :])) / var[None, :]
    return density @ rates + 1e-12


def oracle_rates(world: eval_data.World, origin_day: int) -> dict[str, np.ndarray]:
    """True hotspot rates: in the test window, at the origin, and before it."""
    return {
        "future": world.hotspot_rates(np.arange(origin_day, origin_day + TEST_DAYS) + 0.5).mean(axis=0),
        "now": world.hotspot_rates(np.array([origin_day - 0.5]))[0],
        "past": world.hotspot_rates(np.arange(0, origin_day) + 0.5).mean(axis=0),
    }


def data_rates(world: eval_data.World, train: IncidentSet, origin_s: int) -> dict[str, np.ndarray]:
    """Each hotspot's decayed count of the training incidents within MEMBER_KM of its true centre."""
    dy = (np.asarray(train.lat)[:, None] - world.centre_lat[None, :]) * eval_data.KM_PER_DEG
    dx = (np.asarray(train.lng)[:, None] - world.centre_lng[None, :]) * KM_PER_DEG_LNG
    distance = np.hypot(dx, dy)
    nearest, member = distance.argmin(axis=1), distance.min(axis=1) < MEMBER_KM
    age = (origin_s - np.asarray(train.utc_s, dtype=np.int64)[member]) / 86400.0
    out = {}
    for h in DATA_HALF_LIVES:
        decay = np.ones(len(age)) if math.isinf(h) else np.power(0.5, age / h)
        out[f"data-h{h:g}"] = np.bincount(nearest[member], weights=decay, minlength=len(world.peak))
    return out


def recipe_maps(train: IncidentSet, cells: np.ndarray, candidates: np.ndarray, origin_s: int) -> list[np.ndarray]:
    """The 48 simple decayed-count maps the hindsight bounds choose from."""
    sources, rows = np.unique(cells, return_inverse=True)
    disks = Disks(sources)
    base = np.where(train.violent, 1.5, 1.0) * train.weights
    per_entry = kernel_rates(train.utc_s, base, (*RECIPE_HALF_LIVES, 120.0), origin_s)
    per_source = np.column_stack([np.bincount(rows, weights=col, minlength=len(sources)) for col in per_entry.T])
    spread = {name: disks.spread(per_source, name, candidates) for name in ("cell", "ring", "wide")}
    spread["cell+ring"] = 0.5 * spread["cell"] + 0.5 * spread["ring"]
    trend = np.sqrt((spread["ring"][:, -1] + 0.001) / (spread["ring"][:, -2] + 0.001))
    plain = [m[:, j] for m in spread.values() for j in range(len(RECIPE_HALF_LIVES))]
    return plain + [m * trend for m in plain]


def probe_seed(seed: int) -> tuple[dict[str, list[np.ndarray]], np.ndarray]:
    """Per probe, the PAI of each split; and the recipes' PAI (splits × recipes × fractions)."""
    data = eval_data.simulate(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "eval.csv"
        eval_data.write_csv(data, path)
        incidents = read_point_incidents(path)
    world = eval_data.make_world(seed)
    own = _cells_of(incidents, 8)
    utc = np.asarray(incidents.utc_s, dtype=np.int64)
    out: dict[str, list[np.ndarray]] = {}
    recipes = []
    for k in range(SPLITS):
        origin_day = FIRST_ORIGIN_DAY + k * TEST_DAYS
        origin = int(eval_data.day_to_epoch(np.array([float(origin_day)]))[0])
        train_mask, test_mask = utc < origin, (utc >= origin) & (utc < origin + TEST_DAYS * 86400)
        train = incidents.select(train_mask)
        candidates = candidate_cells(own[train_mask], None)
        pos = np.minimum(np.searchsorted(candidates, own[test_mask]), len(candidates) - 1)
        inside = candidates[pos] == own[test_mask]
        weights = incidents.weights[test_mask]
        mass = np.bincount(pos[inside], weights=weights[inside], minlength=len(candidates))
        total = float(weights.sum())
        model, _ = _model_scores(train, own[train_mask], BuildParams(), None, candidates, origin, TEST_DAYS, ())
        out.setdefault("model", []).append(pai(model, mass, total))
        for name, rates in {**oracle_rates(world, origin_day), **data_rates(world, train, origin)}.items():
            out.setdefault(f"centres+{name}", []).append(pai(hotspot_map(world, rates, candidates), mass, total))
        maps = recipe_maps(train, own[train_mask], candidates, origin)
        recipes.append([pai(m, mass, total) for m in maps])
    return out, np.array(recipes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    args = parser.parse_args(argv)
    probes: dict[str, list[np.ndarray]] = {}
    hindsight: list[np.ndarray] = []
    maxima: list[np.ndarray] = []
    for seed in args.seeds:
        out, recipes = probe_seed(seed)
        for name, values in out.items():
            probes.setdefault(name, []).extend(values)
        chosen = int(recipes.mean(axis=0)[:, 1].argmax())  # best mean PAI at 5 % on this seed's test windows
        hindsight.extend(recipes[:, chosen, :])
        maxima.extend(recipes.max(axis=1))
    probes["hindsight recipe"] = hindsight
    probes["hindsight max"] = maxima
    print(f"seeds {args.seeds}, {SPLITS} splits each: mean PAI at 1 / 5 / 10 % of the area")
    for name, values in probes.items():
        print(f"{name:<22} " + " / ".join(f"{v:5.2f}" for v in np.mean(values, axis=0)))


if __name__ == "__main__":
    main()
