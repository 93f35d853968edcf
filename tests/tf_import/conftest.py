"""The op handler cases' fixtures: every case translated and run once per session, in one TensorFlow process, and
those with a TFLite form once more, converted to TFLite (tests/tf_import/op_cases.py)."""

import pytest

pytest.register_assert_rewrite("tests.tf_import.op_cases")  # the asserts of the tests handler_tests makes

from tests.tf_import.op_cases import every_case, run_cases, tflite_cases  # noqa: E402


@pytest.fixture(scope="session")
def translated(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("ops"), every_case())


@pytest.fixture(scope="session")
def in_tflite(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("ops_tflite"), tflite_cases(every_case()), "--tflite")
