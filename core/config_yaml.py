"""Checking a yaml config and every `_BASE_` it names before detectron2 reads them.

detectron2's `merge_from_file` falls back to `yaml.unsafe_load`, so a tag such as `!!python/object/apply:os.system`
anywhere in the chain would run code while the config loads. Configs come from the same untrusted places as
weights, so the whole chain is read here first with a loader that knows only plain YAML types.
"""

import os

import yaml

from core import D2TFError

BASE_KEY = "_BASE_"  # fvcore's key for the configs a yaml inherits from
_STANDARD_TAG = "tag:yaml.org,2002:"


class _PlainLoader(yaml.SafeLoader):
    """SafeLoader that refuses an unknown tag in one line naming file and line (SafeLoader's own error is several
    lines, and detectron2 would catch it to retry unsafely)."""


def _refuse_tag(loader, node):
    tag = node.tag.replace(_STANDARD_TAG, "!!", 1)
    raise D2TFError(f"{node.start_mark.name}:{node.start_mark.line + 1}: YAML tag {tag} refused: configs must be "
                    "plain YAML (Python tags run code when detectron2 loads them)")


_PlainLoader.add_constructor(None, _refuse_tag)  # None: every tag without a constructor of its own


def check_chain(path, _including=()):
    """Reads `path` and, recursively, its `_BASE_` files as fvcore resolves them; raises D2TFError on the first
    tag that is not plain YAML, or on a file that cannot be read."""
    if os.path.realpath(path) in _including:
        raise D2TFError(f"{path}: {BASE_KEY} chain includes this file again")
    for base in _bases(path, _load(path)):
        check_chain(base, _including + (os.path.realpath(path),))


def _load(path):
    try:
        with open(path) as f:
            return yaml.load(f, _PlainLoader)
    except OSError as e:
        raise D2TFError(f"cannot read config {path}: {e.strerror}") from None
    except yaml.MarkedYAMLError as e:  # syntax errors, which know their line
        raise D2TFError(f"{path}:{e.problem_mark.line + 1}: not valid YAML: {e.problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:  # bytes that are not text
        raise D2TFError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None


def _bases(path, data):
    """The `_BASE_` paths of a loaded yaml: relative to the including file, `~` expanded, as fvcore does."""
    names = data.get(BASE_KEY, []) if isinstance(data, dict) else []
    for name in names if isinstance(names, list) else [names]:
        if not isinstance(name, str):
            raise D2TFError(f"{path}: {BASE_KEY} must be a file path or a list of them, not {name!r}")
        if name.startswith(("http://", "https://")):  # fvcore would download it
            raise D2TFError(f"{path}: {BASE_KEY} {name} is remote: download it and name the local file")
        yield os.path.join(os.path.dirname(path), os.path.expanduser(name))
