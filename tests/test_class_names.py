"""core/class_names.py: a model's class names from the user's file, and the one-line refusals."""

import json

import pytest

from core import D2TFError
from core.class_names import MAX_BYTES, read_class_names


def test_a_text_file_gives_one_name_a_line_in_order(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("balloon\n\n  red car \nperson\n")
    assert read_class_names(str(path)) == ["balloon", "red car", "person"]


def test_a_coco_json_gives_its_categories_in_the_order_of_their_ids(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": [], "categories": [{"id": 7, "name": "dog"}, {"id": 2, "name": "cat"},
                                                              {"id": 10, "name": "bird"}]}))
    assert read_class_names(str(path)) == ["cat", "dog", "bird"]


REFUSED = {
    "empty": ("names.txt", "\n\n", "no names in it"),
    "a control character": ("names.txt", "cat\nd\x1bog\n", "is not a name"),
    "a name too long": ("names.txt", "x" * 201 + "\n", "is not a name"),
    "json without categories": ("c.json", '{"images": []}', "not a COCO json with categories"),
    "json categories without ids": ("c.json", '{"categories": [{"name": "cat"}]}', "not a COCO json"),
    "json nested too deep": ("c.json", "[" * 100_000, "not a COCO json"),
    "not UTF-8": ("names.txt", b"\xff\xfe", "not UTF-8 text"),
    "too large": ("names.txt", "a\n" * (MAX_BYTES // 2 + 1), f"more than {MAX_BYTES}"),
}


@pytest.mark.parametrize("name, content, message", REFUSED.values(), ids=REFUSED)
def test_what_is_not_a_list_of_names_is_refused_in_one_line(name, content, message, tmp_path):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(D2TFError, match=f"^--class-names {path}: .*{message}") as err:
        read_class_names(str(path))
    assert "\n" not in str(err.value)


def test_a_directory_or_a_missing_file_is_refused(tmp_path):
    with pytest.raises(D2TFError, match="not a regular file"):
        read_class_names(str(tmp_path))
    with pytest.raises(D2TFError, match="No such file or directory"):
        read_class_names(str(tmp_path / "missing.txt"))
