"""Catch an encoded polyline sent at the wrong precision before it is scored.

A precision-6 polyline (OSRM, Valhalla) read as precision 5 decodes to coordinates ten times too
large, mostly out of range; a precision-5 one read as 6 decodes ten times too small: a short
route off the coast of Africa, which would score "0, outside everything". Both are refused with
a hint naming the other field, when the other precision gives a route that makes sense (in
range; and inside the layer's coverage where this one has no point inside it).
"""

from __future__ import annotations

import numpy as np

from geodata.coverage import MIN_COVERED_FRACTION, points_inside
from geodata.errors import InputError, InvalidRouteError, Violation
from geodata.route import RoutePath, decode_polyline, from_polyline

OTHER_PRECISION = {5: 6, 6: 5}


def decode(
    text: str,
    *,
    precision: int,
    field: str,
    other_field: str,
    max_points: int,
    coverage: np.ndarray | None = None,
) -> RoutePath:
    """:func:`geodata.route.from_polyline`, refusing a polyline that is plainly of the other
    precision (:class:`InvalidRouteError` with "did you mean <other_field>?")."""
    other = OTHER_PRECISION[precision]
    hint = f"did you mean {other_field} (precision {other})?"
    try:
        path = from_polyline(text, precision=precision, field=field, max_points=max_points)
    except InvalidRouteError as exc:
        if (
            not _mostly_out_of_range(text, precision, field, max_points)
            or _decoded(text, other, field, max_points) is None
        ):
            raise
        raise InvalidRouteError(
            [*exc.violations, Violation(field, f"decodes to coordinates out of range at precision {precision}; {hint}")]
        ) from None
    if coverage is None or len(coverage) == 0 or points_inside(coverage, path.lat, path.lng) > 0:
        return path
    alternative = _decoded(text, other, field, max_points)
    if alternative is not None and points_inside(coverage, alternative.lat, alternative.lng) >= MIN_COVERED_FRACTION:
        lat, lng = float(path.lat[0]), float(path.lng[0])
        raise InvalidRouteError(
            Violation(
                field,
                f"decodes at precision {precision} to points far outside the layer's data coverage (the first "
                f"at {lat:.5f}, {lng:.5f}), while at precision {other} they lie inside it; {hint}",
            )
        )
    return path


def _decoded(text: str, precision: int, field: str, max_points: int) -> RoutePath | None:
    try:
        return from_polyline(text, precision=precision, field=field, max_points=max_points)
    except InputError:
        return None


def _mostly_out_of_range(text: str, precision: int, field: str, max_points: int) -> bool:
    """Whether most decoded points are out of range (not broken text, nor one bad point)."""
    try:
        lat, lng = decode_polyline(text, precision=precision, field=field, max_points=max_points)
    except InputError:
        return False
    with np.errstate(invalid="ignore"):
        bad = ~((np.abs(lat) <= 90.0) & (np.abs(lng) <= 180.0))
    return bool(len(bad)) and float(bad.mean()) > 0.5
