"""Where the tests find tensorpack's examples/FasterRCNN (tests/builds.py), and what they do without it: skip,
saying how to get it, or fail where CI is set."""

import pytest

from tests import builds


def test_the_client_is_found_where_the_variable_says(tmp_path, monkeypatch):
    (tmp_path / "config.py").write_text("")
    monkeypatch.setenv("D2TF_TENSORPACK_CLIENT", str(tmp_path))
    assert builds._tensorpack_client() == str(tmp_path)
    monkeypatch.setenv("D2TF_TENSORPACK_CLIENT", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(builds, "ROOT", str(tmp_path / "checkout"))  # nothing beside this checkout either
    assert builds._tensorpack_client() is None


def test_without_the_client_a_test_that_needs_it_skips_saying_how_to_get_it(monkeypatch):
    monkeypatch.setattr(builds, "TENSORPACK_CLIENT", None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="clone https://github.com/tensorpack/tensorpack at commit 1547a54e"
                                                    ".* set D2TF_TENSORPACK_CLIENT=<clone>/examples/FasterRCNN"):
        builds.needs_tensorpack()
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="tensorpack's examples/FasterRCNN not found"):
        builds.needs_tensorpack()
    monkeypatch.setattr(builds, "TENSORPACK_CLIENT", "/somewhere")
    builds.needs_tensorpack()  # found: nothing happens
