"""The documentation: a README read in five minutes, links that resolve inside the repository (files and their
headings), and no pointer to files outside it."""

import os
import re

import pytest

from tests.processes import ROOT

README_MAX_LINES = 200
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_OUTSIDE = "shared/" + "reference"  # split so that this file does not match itself
_SKIPPED_DIRS = {"out", "__pycache__"}


def documents():
    docs = os.path.join(ROOT, "docs")
    return ["README.md"] + sorted(os.path.join("docs", name) for name in os.listdir(docs) if name.endswith(".md"))


def _prose(path):
    """The file's text without its fenced code blocks (where `#` starts comments, not headings)."""
    with open(path) as f:
        return _FENCE.sub("", f.read())


def anchor(heading):
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    return {anchor(line.lstrip("#")) for line in _prose(path).splitlines() if re.match(r"#{1,6} ", line)}


def broken_links(document):
    path = os.path.join(ROOT, document)
    broken = []
    for target in _LINK.findall(_prose(path)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, fragment = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        if not resolved.startswith(ROOT + os.sep) or not os.path.exists(resolved):
            broken.append(f"{target}: no such file in the repository")
        elif fragment and resolved.endswith(".md") and fragment not in anchors(resolved):
            broken.append(f"{target}: no such heading")
    return broken


def test_readme_reads_in_five_minutes():
    with open(os.path.join(ROOT, "README.md")) as f:
        count = len(f.read().splitlines())
    assert count <= README_MAX_LINES, f"README.md has {count} lines: move detail to docs/"


@pytest.mark.parametrize("document", documents())
def test_every_relative_link_resolves_inside_the_repository(document):
    assert not broken_links(document), broken_links(document)


def test_no_file_points_outside_the_repository():
    found = []
    for directory, subdirs, files in os.walk(ROOT):
        subdirs[:] = [d for d in subdirs if not d.startswith(".") and d not in _SKIPPED_DIRS]
        for name in files:
            if name.endswith((".md", ".py")):
                path = os.path.join(directory, name)
                with open(path, errors="replace") as f:
                    if _OUTSIDE in f.read():
                        found.append(os.path.relpath(path, ROOT))
    assert not found, f"{_OUTSIDE} is outside the repository; point to docs/tensorpack.md instead: {found}"


def test_anchor_follows_githubs_rule():
    assert anchor("2. The flags (`flags.txt`) and `tensorpack_config.py`") == (
        "2-the-flags-flagstxt-and-tensorpack_configpy")
    assert anchor("Detectron2's model zoo, config by config") == "detectron2s-model-zoo-config-by-config"
