"""The `d2tf` command as `make setup` installs it (.venv/bin/d2tf, d2tf/cli.py): `d2tf --help` lists every command,
`d2tf COMMAND --help` is that tool's own help and names the files it reads and writes, the tools name a conversion's
directory and their working directory alike, and errors are one line."""

import functools
import os
import subprocess
import sys

import pytest

from d2tf.cli import COMMANDS
from tests.processes import ROOT
from tests.test_layering import LAYERS

D2TF = os.path.join(os.path.dirname(sys.executable), "d2tf")  # beside the venv's python, where the set-up puts it
# PYTHONPATH: the checkout under test (tools/mutation.py's copy) rather than the one the editable install names.
ENV = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3", COLUMNS="1000")

# What each command's --help must name: the formats it reads and the files it writes.
FORMATS = {
    "convert": [".yaml", ".pkl", ".pth", "model.onnx", "model.json", "model.fixed.onnx", "model.pb", "saved_model",
                "model.tflite", "model.npz", "flags.txt", "tensorpack_config.py", "report.md", "verify.png"],
    "export": [".yaml", ".pkl", ".pth", "OUT/model.onnx", "OUT/model.json"],
    "graphfix": ["model.onnx", "model.fixed.onnx"],
    "tf_import": ["model.fixed.onnx", "OUT/model.pb", "OUT/saved_model/", "OUT/model.tflite", "OUT/model.npz",
                  "flags.txt", "tensorpack_config.py"],
    "verify": ["OUT/model.onnx", "model.fixed.onnx", "model.pb", "model.tflite", "saved_model/", ".pkl/.pth",
               "OUT/report.md", "OUT/verify.png", "DIR/<runtime>.npz"],
    "evaluate": ["OUT/model.fixed.onnx", "OUT/model.pb", ".pkl/.pth", "instances_*.json",
                 "DIR/detectron2_results.json", "DIR/pb_results.json"],
    "inspect": ["OUT/model.onnx", "OUT/model.fixed.onnx"],
    "bench": ["model.onnx", "model.pb", "weights.pkl", "OUT/bench.md"],
    "calibrate": [".yaml", ".pkl", ".pth"],
    "zoo": [".yaml", "d2tf/zoo_agreement.json", "docs/zoo.md"],
}


def d2tf(*args):
    assert os.access(D2TF, os.X_OK), f"{D2TF} is missing: `make setup` installs it"
    return subprocess.run([D2TF, *map(str, args)], capture_output=True, text=True, env=ENV)


@functools.cache
def help_text(command):
    """`d2tf COMMAND --help`'s output, whitespace collapsed."""
    result = d2tf(command, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    return " ".join(result.stdout.split())


def test_help_lists_every_command_with_its_line():
    result = d2tf("--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: d2tf "), result.stderr
    listed = {line.split()[0]: line for line in result.stdout.split("commands:\n", 1)[1].splitlines()}
    assert set(listed) == set(FORMATS), "d2tf --help must list exactly the commands FORMATS names"
    for name, line in listed.items():
        assert line.split(None, 1)[1] == COMMANDS[name][1]


@pytest.mark.parametrize("command", sorted(FORMATS))
def test_a_commands_help_is_its_tools_and_names_its_files(command):
    text = help_text(command)
    assert text.startswith(f"usage: d2tf {command} [-h]")
    assert "Reads " in text and "Writes " in text, text
    assert [name for name in FORMATS[command] if name not in text] == []


@pytest.mark.parametrize("command", ["convert", "export", "verify", "evaluate", "inspect"])
def test_a_conversions_directory_is_always_out(command):
    assert " --out OUT " in help_text(command)


@pytest.mark.parametrize("command", ["verify", "evaluate"])
def test_a_working_directory_is_always_work_dir(command):
    assert " --work-dir DIR " in help_text(command)


def test_an_unknown_command_fails_in_one_line():
    result = d2tf("nope", "--out", "x")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: d2tf: argument COMMAND: invalid choice: 'nope' (choose from 'convert', ")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, expected", [
    ((), "error: d2tf verify: the following arguments are required: --out (see --help)"),
    (("--out", "{tmp}"), "error: {tmp}/model.fixed.onnx not found: verify reads a directory written by `make convert`"),
])
def test_a_commands_errors_are_one_line(args, expected, tmp_path):
    """A usage error of the command's own parser, and a D2TFError from its run (core.cli.run's)."""
    result = d2tf("verify", *(arg.format(tmp=tmp_path) for arg in args))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [expected.format(tmp=tmp_path)]


@pytest.mark.parametrize("command", ["convert", "tf_import"])
def test_a_smaller_tflite_variant_without_the_tflite_model_is_one_line(command, tmp_path):
    args = ["--config", "c.yaml", "--weights", "w.pkl", "--out", str(tmp_path)] if command == "convert" else [
        str(tmp_path / "model.fixed.onnx")]
    result = d2tf(command, *args, "--no-tflite", "--tflite-variant", "float16")
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "--tflite-variant needs the TFLite model: drop --no-tflite" in line, line


def test_only_the_chosen_commands_module_is_imported():
    """`d2tf --help` and `d2tf zoo --help` load neither PyTorch nor TensorFlow (they crash in one process) nor
    another command's module."""
    probe = ("import sys\nfrom d2tf.cli import COMMANDS, dispatch\nfor argv in (['--help'], ['zoo', '--help']):\n"
             "    try:\n        dispatch(argv)\n    except SystemExit:\n        pass\n"
             "others = [m for m, _ in COMMANDS.values() if m != 'd2tf.zoo_table']\n"
             "print(sorted(set(sys.modules) & {'torch', 'tensorflow', 'onnxruntime', *others}))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "[]"


def test_commands_sit_below_the_driver():
    """The dispatcher imports its commands by name, which tests/test_layering.py's scan cannot see: each must be
    a module of d2tf's layer or one below it."""
    assert [module for module, _ in COMMANDS.values() if LAYERS[module.split(".")[0]] > LAYERS["d2tf"]] == []
