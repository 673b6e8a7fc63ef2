"""Hit rates of a ranking of cells: the metric the backtest reports and the fit's selection uses.

Cells are about equal in area, so the top *x* % of the area is the top ``x · N`` of the ``N``
cells.  Ties are split fractionally (the expected value under random tie-breaking; scores
within a relative ``TIE_RTOL`` are ties, so float32 noise never decides).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AREA_FRACTIONS = (0.01, 0.05, 0.10)
TIE_RTOL = 1e-6


def hit_rates(
    scores: np.ndarray, test_mass: np.ndarray, fractions: Sequence[float], *, total: float | None = None
) -> np.ndarray:
    """Expected share of ``total`` (default: all of ``test_mass``) in the top ``x`` of cells by ``scores``.

    Cells are ranked by descending score; a block of tied scores straddling the cut is
    included in proportion to how much of it fits (random tie-breaking in expectation).
    """
    scores = np.asarray(scores, dtype=np.float64)
    test_mass = np.asarray(test_mass, dtype=np.float64)
    n = len(scores)
    total = float(test_mass.sum()) if total is None else float(total)
    if n == 0 or total <= 0:
        raise ValueError("hit rates need candidate cells and test incidents")
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    mass = test_mass[order]
    new_block = np.ones(n, dtype=bool)
    new_block[1:] = ~np.isclose(ranked[1:], ranked[:-1], rtol=TIE_RTOL, atol=0.0)
    starts = np.flatnonzero(new_block)
    sizes = np.diff(np.append(starts, n))
    block_mass = np.add.reduceat(mass, starts)
    cut = np.asarray(fractions, dtype=np.float64)[:, None] * n  # cells inside the top x
    included = np.clip((cut - starts[None, :]) / sizes[None, :], 0.0, 1.0)
    return np.asarray((included * block_mass[None, :]).sum(axis=1) / total, dtype=np.float64)
