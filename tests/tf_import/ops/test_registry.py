"""tf_import/ops/__init__.py, the handler registry: every handler it registers has a case that translates it, in
the cases of every file (tests/tf_import/op_cases.py), whose names are unique."""

import json

from tests.tf_import.op_cases import every_case


def test_case_names_are_unique():
    names = [case.name for case in every_case()]
    assert len(names) == len(set(names))


def test_every_handler_has_a_case(translated):
    registered = set(json.loads((translated / "ops.json").read_text()))
    translated_ops = {n.op_type for case in every_case() if not case.refused for n in case.nodes}
    assert registered - translated_ops == set(), "handlers without a case that translates them"
