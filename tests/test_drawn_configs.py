"""The seeded config generator (tests/drawn_configs.py): its draws are configs export/supported.py accepts, they span
the space it claims, and a seed always draws the same model. The suite converts builds.DRAWN_SEEDS' draws
(test_convert.py)."""

import collections

import pytest

from core import zoo
from export.supported import _TUNABLE, check_supported
from tests import drawn_configs

SEEDS = range(120)


@pytest.fixture(scope="module")
def checked():
    """{seed: (Architecture, tuned keys)} of the draws, each checked by export/supported.py as the export checks it."""
    result = {}
    for seed in SEEDS:
        base, overrides, _ = drawn_configs.draw(seed)
        cfg = zoo.load_config(base).clone()
        cfg.defrost()
        cfg.merge_from_list(overrides)
        result[seed] = check_supported(cfg)
    return result


def test_a_seed_draws_the_same_model_every_time():
    assert drawn_configs.draw(7) == drawn_configs.draw(7)
    assert drawn_configs.draw(7) != drawn_configs.draw(8)


def test_the_draws_span_every_base_and_most_tunable_keys(checked):
    bases = collections.Counter(drawn_configs.draw(seed)[0] for seed in SEEDS)
    assert set(bases) == set(drawn_configs.BASES.values()), bases
    tuned = set().union(*(keys for _, keys in checked.values()))
    # no keypoint, semantic or panoptic models drawn
    undrawn = {key for key in _TUNABLE if key.startswith(("MODEL.ROI_KEYPOINT_HEAD.", "MODEL.SEM_SEG_HEAD."))}
    assert _TUNABLE - undrawn - tuned == set()
    archs = [arch for arch, _ in checked.values()]
    assert {a.depth for a in archs} == {18, 34, 50, 101}
    assert {a.norm for a in archs} == {"FrozenBN", "BN", "GN"}
    assert {a.backbone for a in archs} == {"FPN", "C4", "DC5"}
    assert any(a.cascade and a.mask for a in archs) and any(a.class_agnostic for a in archs)
    assert {a.meta for a in archs} == {"GeneralizedRCNN", "RetinaNet"}
