"""Shared fixtures: calibrated checkpoints, generated once per test session and per architecture."""

import pytest

from d2tf import zoo


@pytest.fixture(scope="session")
def checkpoint_path(tmp_path_factory):
    """`checkpoint_path(config, ext=".pkl")` -> path of a calibrated checkpoint for that config (seed 0)."""
    from d2tf import calibrate

    cache = {}
    root = tmp_path_factory.mktemp("checkpoints")

    def get(config, ext=".pkl"):
        key = (config, ext)
        if key not in cache:
            path = root / (zoo.short_name(config) + ext)
            calibrate.write_checkpoint(config, path)
            cache[key] = path
        return cache[key]

    return get
