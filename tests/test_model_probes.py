"""The gap probes of docs/model.md §4 (bench/model_probes.py) measure what they say they measure."""

from __future__ import annotations

import numpy as np

from bench import model_probes


def test_knowing_the_true_hotspots_beats_the_fit_and_the_recipes_are_all_there() -> None:
    probes, recipes = model_probes.probe_seed(1)
    assert recipes.shape == (model_probes.SPLITS, 48, 3)
    mean = {name: np.mean(values, axis=0) for name, values in probes.items()}
    # the generator's own hotspots at their true rates must rank cells better than any fit of its
    # incidents; a probe that put them in the wrong place (axes swapped, wrong scale) would not
    assert np.all(mean["centres+future"] > mean["model"])
    assert np.all(mean["centres+now"] > mean["centres+data-hinf"])
    # PAI is bounded by 1 / area share; every probe is a ranking better than uniform
    for values in mean.values():
        assert np.all(values > 1.0)
        assert np.all(values <= 1.0 / np.array(model_probes.AREA_FRACTIONS))
