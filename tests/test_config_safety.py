"""A config is untrusted input, like weights: no yaml tag, `_BASE_` file or LazyConfig .py runs code while d2tf
loads it. detectron2's `merge_from_file` falls back to `yaml.unsafe_load`, so d2tf checks the chain itself."""

import glob
import os
import resource
import subprocess
import sys

import pytest

from core import D2TFError, zoo
from core.process import MALLOC
from tests.processes import ROOT, run_python

ZOO_BASE = "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml"
REFUSED = "refused: configs must be plain YAML (Python tags run code when detectron2 loads them)"


def _payload_config(tmp_path, through_base):
    """A config whose NUM_CLASSES line (line 4 of its file) would create `marker` if loaded unsafely: in the user's
    yaml itself, or in a yaml its `_BASE_` names relative to it. Returns (config, offending file, marker)."""
    from detectron2 import model_zoo

    marker = tmp_path / "marker"
    body = (f'_BASE_: "{model_zoo.get_config_file(ZOO_BASE)}"\nMODEL:\n  ROI_HEADS:\n'
            f'    NUM_CLASSES: !!python/object/apply:os.system ["touch {marker}"]\n')
    config = tmp_path / "cfg.yaml"
    offending = tmp_path / "bases" / "evil.yaml" if through_base else config
    offending.parent.mkdir(exist_ok=True)
    offending.write_text(body)
    if through_base:
        config.write_text('_BASE_: "bases/evil.yaml"\n')
    return str(config), str(offending), marker


@pytest.mark.parametrize("through_base", [False, True], ids=["direct", "through_base"])
def test_python_tag_is_refused_before_it_runs(tmp_path, through_base):
    config, offending, marker = _payload_config(tmp_path, through_base)
    with pytest.raises(D2TFError) as err:
        zoo.load_config(config)
    assert str(err.value) == f"{offending}:4: YAML tag !!python/object/apply:os.system {REFUSED}"
    assert not marker.exists()


@pytest.mark.parametrize("line, tag", [("NUM_CLASSES: !!python/name:os.system", "!!python/name:os.system"),
                                       ("NUM_CLASSES: !include other.yaml", "!include")])
def test_other_unknown_tags_are_refused(tmp_path, line, tag):
    config = tmp_path / "cfg.yaml"
    config.write_text(f"MODEL:\n  ROI_HEADS:\n    {line}\n")
    with pytest.raises(D2TFError) as err:
        zoo.load_config(str(config))
    assert str(err.value) == f"{config}:3: YAML tag {tag} {REFUSED}"


# Every YAML tag family that makes PyYAML's unsafe loader run code, in each way a tag can be written (shorthand,
# verbatim, through a %TAG handle) and on each kind of node (scalar, sequence, mapping). `{m}`: a marker file the
# payload would create.
CODE_TAGS = {
    "object/apply, shorthand": ("", '!!python/object/apply:os.system ["touch {m}"]'),
    "object/apply, verbatim": ("", '!<tag:yaml.org,2002:python/object/apply:os.system> ["touch {m}"]'),
    "object/apply, %TAG handle": ("%TAG !p! tag:yaml.org,2002:python/\n---\n",
                                  '!p!object/apply:os.system ["touch {m}"]'),
    "object/apply, mapping": ("", '!!python/object/apply:os.system {{args: ["touch {m}"]}}'),
    "object/new": ("", '!!python/object/new:os.system ["touch {m}"]'),
    "object on a mapping": ("", "!!python/object:subprocess.Popen {{args: [touch, '{m}']}}"),
    "object/apply on a scalar": ("", "!!python/object/apply:os.system 'touch {m}'"),
    "name": ("", "!!python/name:os.system"),
    "module": ("", "!!python/module:os"),
}


@pytest.mark.parametrize("directive, value", CODE_TAGS.values(), ids=CODE_TAGS)
def test_every_tag_family_that_runs_code_is_refused_and_runs_nothing(directive, value, tmp_path):
    marker = tmp_path / "ran"
    config = tmp_path / "cfg.yaml"
    config.write_text(f"{directive}MODEL:\n  ROI_HEADS:\n    NUM_CLASSES: {value.format(m=marker)}\n")
    with pytest.raises(D2TFError) as err:
        zoo.load_config(str(config))
    assert str(err.value).startswith(f"{config}:") and "YAML tag !!python/" in str(err.value), err.value
    assert "\n" not in str(err.value) and not marker.exists()


@pytest.mark.parametrize("module, through_base", [("export", False), ("d2tf.convert", True)])
def test_command_lines_refuse_the_payload_in_one_line(tmp_path, through_base, module):
    config, offending, marker = _payload_config(tmp_path, through_base)
    weights = tmp_path / "model_final.pkl"
    weights.write_bytes(b"never read: the config is refused first")
    result = run_python("-m", module, "--config", config, "--weights", weights, "--out", tmp_path / "out")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {offending}:4: YAML tag !!python/object/apply:os.system {REFUSED}")
    assert "Traceback" not in result.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_user_lazyconfig_py_is_refused_unrun(tmp_path):
    marker = tmp_path / "marker"
    config = tmp_path / "cfg.py"
    config.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    with pytest.raises(D2TFError) as err:
        zoo.load_config(str(config))
    assert str(err.value) == (f"{config}: a LazyConfig .py file is Python that runs when loaded; d2tf reads only "
                              "yaml configs, whose content it can check first")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py",
                                  "new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ"])
def test_zoo_lazyconfig_is_not_supported_yet(name):
    with pytest.raises(D2TFError) as err:
        zoo.load_config(name)
    assert str(err.value) == (f"{name}: detectron2's LazyConfig (.py) zoo configs are not supported yet; use a .yaml "
                              f"zoo config (e.g. {zoo.DEFAULT_EXAMPLE})")


@pytest.mark.parametrize("base, message", [
    ("cfg.yaml", "{base}: _BASE_ chain includes this file again"),
    ("missing.yaml", "cannot read config {base}: No such file or directory"),
    ("https://example.com/base.yaml", "{config}: _BASE_ https://example.com/base.yaml is remote: download it and "
                                      "name the local file"),
    ("[1]", "{config}: _BASE_ must be a file path or a list of them, not 1"),
])
def test_base_chain_problems_are_one_line(tmp_path, base, message):
    config = tmp_path / "cfg.yaml"
    config.write_text(f"_BASE_: {base}\n")
    with pytest.raises(D2TFError) as err:
        zoo.load_config(str(config))
    assert str(err.value) == message.format(config=config, base=tmp_path / base)


@pytest.mark.parametrize("content, error", [
    (b"MODEL:\n  PIXEL_STD: [57.375,\n", ":3: not valid YAML: expected the node content, but found '<stream end>'"),
    (b"MODEL:\n  DEVICE: cpu\n    WEIGHTS: x\n", ":3: not valid YAML: mapping values are not allowed here"),
    (b"\x80\x04", ": not valid YAML: 'utf-8' codec can't decode byte 0x80 in position 0: invalid start byte"),
])
def test_invalid_yaml_is_one_line(tmp_path, content, error):
    config = tmp_path / "cfg.yaml"
    config.write_bytes(content)
    with pytest.raises(D2TFError) as err:
        zoo.load_config(str(config))
    assert str(err.value) == f"{config}{error}"


def test_zoo_yamls_load_as_detectron2_loads_them():
    """d2tf reads every yaml of detectron2's zoo (their relative `_BASE_` files and the RetinaNet base's arithmetic
    `eval` included) into the config detectron2's own, unsafe, merge_from_file makes of these trusted files."""
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    root = os.path.join(os.path.dirname(model_zoo.__file__), "configs")
    configs = sorted(glob.glob(os.path.join(root, "**", "*.yaml"), recursive=True))
    assert len(configs) == 92
    differ = []
    for config in configs:
        expected = get_cfg()
        expected.merge_from_file(config, allow_unsafe=True)
        expected.MODEL.DEVICE, expected.MODEL.WEIGHTS = "cpu", ""
        if zoo.load_config(config) != expected:
            differ.append(os.path.relpath(config, root))
    assert differ == []
    assert zoo.load_config("COCO-Detection/retinanet_R_50_FPN_3x.yaml").MODEL.ANCHOR_GENERATOR.SIZES[1] == [
        64, 64 * 2 ** (1 / 3), 64 * 2 ** (2 / 3)]


def test_an_older_config_version_is_upgraded_as_detectron2_upgrades_it(tmp_path):
    from detectron2.config import get_cfg

    config = tmp_path / "cfg.yaml"
    config.write_text("VERSION: 1\nMODEL:\n  ROI_HEADS:\n    SCORE_THRESH: 0.3\n"
                      "  RETINANET:\n    INFERENCE_TOPK_CANDIDATES: 500\n")
    expected = get_cfg()
    expected.merge_from_file(str(config), allow_unsafe=False)
    loaded = zoo.load_config(str(config))
    assert (loaded.MODEL.ROI_HEADS.SCORE_THRESH_TEST, loaded.MODEL.RETINANET.TOPK_CANDIDATES_TEST) == (0.3, 500)
    assert loaded.MODEL.ROI_HEADS == expected.MODEL.ROI_HEADS and loaded.MODEL.RETINANET == expected.MODEL.RETINANET


def _eval_config(tmp_path, expression):
    config = tmp_path / "cfg.yaml"
    config.write_text(f"MODEL:\n  ANCHOR_GENERATOR:\n    SIZES: !!python/object/apply:eval [{expression!r}]\n")
    return str(config)


@pytest.mark.parametrize("expression, sizes", [
    ("[[x, x * 2**(1.0/3)] for x in [32, 64]]", [[32, 32 * 2 ** (1 / 3)], [64, 64 * 2 ** (1 / 3)]]),
    ("[[-(2 - 8) / 3, 1.5 ** 2], [x * y for x in [1, 2] for y in [3, 4]]]", [[2.0, 2.25], [3, 4, 6, 8]]),
])
def test_eval_tag_computes_arithmetic(tmp_path, expression, sizes):
    assert zoo.load_config(_eval_config(tmp_path, expression)).MODEL.ANCHOR_GENERATOR.SIZES == sizes


@pytest.mark.parametrize("expression, why", [
    ("__import__('os').system('touch {marker}')", "\"__import__('os').system('touch {marker}')\" is not arithmetic "
                                                 "on numbers and lists"),
    ("[open('{marker}', 'w') for x in [1]]", "\"open('{marker}', 'w')\" is not arithmetic on numbers and lists"),
    ("[x for x in range(9)]", "'range(9)' is not arithmetic on numbers and lists"),
    ("[x for x in [1, 2] if x > 1]", "' for x in [1, 2] if x > 1': only `for name in list` is arithmetic"),
    ("9 ** 9 ** 9", "numbers too large for a config"),
    ("[0 for a in [1] * 9]", "arithmetic on a list"),
    ("[[[0 for a in {big}] for b in {big}] for c in {big}]", "more than 100000 values"),
    ("1 / 0", "division by zero"),
    ("(-8) ** (1 / 3)", "'(-8) ** (1 / 3)' is not a real number"),
    ("-" * 30_000 + "1", "an expression of 30001 characters, longer than 1000"),
    ("[32,", "not a Python expression ('[' was never closed)"),
])
def test_eval_tag_refuses_anything_but_arithmetic_in_one_line(tmp_path, expression, why):
    marker = tmp_path / "marker"
    big = list(range(50))
    config = _eval_config(tmp_path, expression.format(marker=marker, big=big))
    with pytest.raises(D2TFError) as err:
        zoo.load_config(config)
    assert str(err.value) == (f"{config}:3: YAML tag !!python/object/apply:eval refused: d2tf computes only "
                              f"arithmetic on numbers and lists; {why.format(marker=marker)}")
    assert not marker.exists()


def test_eval_tag_takes_one_expression(tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text("MODEL:\n  ANCHOR_GENERATOR:\n    SIZES: !!python/object/apply:eval ['1', '2']\n")
    with pytest.raises(D2TFError) as err:
        zoo.load_config(str(config))
    assert str(err.value) == (f"{config}:3: YAML tag !!python/object/apply:eval refused: it takes one expression, as "
                              "a string")


def test_aliases_and_a_base_named_twice_load_within_the_bounds(tmp_path):
    (tmp_path / "shared.yaml").write_text("MODEL:\n  PIXEL_STD: [1.0, 2.0, 3.0]\n")
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(f"_BASE_: shared.yaml\nMODEL:\n  ROI_HEADS:\n    NAME: {name}\n")
    config = tmp_path / "cfg.yaml"
    config.write_text("_BASE_: [a.yaml, b.yaml]\nMODEL:\n  PIXEL_MEAN: &mean [4.0, 5.0, 6.0]\n"
                      "  ANCHOR_GENERATOR:\n    SIZES: [*mean]\n")
    assert zoo.read_yaml(str(config))[1] == {"MODEL": {"PIXEL_STD": [1.0, 2.0, 3.0], "ROI_HEADS": {"NAME": "b"},
                                                       "PIXEL_MEAN": [4.0, 5.0, 6.0],
                                                       "ANCHOR_GENERATOR": {"SIZES": [[4.0, 5.0, 6.0]]}}}


# Hostile and careless inputs (issue 31), each refused in one line before the work it would cost. The tables below,
# and the ones in test_checkpoint.py, are the probe list: the next round adds rows.

# What `python -m export` runs first, as a command line: the config's chain read as zoo.load_config reads it (without
# detectron2's merge, which imports PyTorch: every check is in the read), then the weights.
LOADERS = ("import sys; from core import checkpoint, cli, zoo; "
           "cli.run(lambda argv: (zoo.read_yaml(argv[0]), checkpoint.load_weights(argv[1])), sys.argv[1:])")
# Address space a probe may take: the loaders' own is 0.1 GB, 3.3 GB once a torch file makes them import PyTorch, and
# a probe adds a few hundred MB at most. The slowest probe takes 2 s.
SMALL_LOADERS, TORCH_LOADERS, SECONDS = 1 << 30, 9 << 29, 30


def refusal(directory, config, weights, address_space):
    """The one line, `error: ...`, the loaders refuse `config` and `weights` with in a process limited to
    `address_space` bytes and SECONDS; the test fails on anything else: another exit status, a crash, a traceback,
    more lines, or a file written in `directory`."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    # the suite's malloc slack (core/process.MALLOC) is 1 GiB of address space, not of memory: left out here
    env = {name: value for name, value in os.environ.items() if name not in MALLOC}
    before = sorted(os.listdir(directory))
    result = subprocess.run([sys.executable, "-c", LOADERS, str(config), str(weights)], capture_output=True, text=True,
                            timeout=SECONDS, preexec_fn=limit, env=dict(env, PYTHONPATH=ROOT, OMP_NUM_THREADS="1"))
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert sorted(os.listdir(directory)) == before
    return lines[0]


def _file(text, name="cfg.yaml"):
    """A builder: `text` in `name`."""
    def build(directory):
        (directory / name).write_text(text)
        return directory / name
    return build


def _base(make):
    """A builder: cfg.yaml naming base.yaml as its _BASE_, which `make(path)` creates."""
    def build(directory):
        make(directory / "base.yaml")
        return _file("_BASE_: base.yaml\n")(directory)
    return build


def _sparse_file(path):
    with open(path, "wb") as f:
        f.truncate(10**10)  # 10 GB that take no disk


def _doubling_chain(directory):
    """30 files, each naming the next twice as its _BASE_: 2**30 reads of the last."""
    for i in range(30):
        (directory / f"f{i}.yaml").write_text(f"_BASE_: [f{i + 1}.yaml, f{i + 1}.yaml]\n")
    (directory / "f30.yaml").write_text("MODEL: {}\n")
    return directory / "f0.yaml"


def _nested_aliases(item, brackets):
    """Ten collections, each holding the one before nine times: under 1 KB, 9**10 values once expanded."""
    lines, value = [], "1"
    for n in range(10):
        items = ", ".join(item.format(i=i, value=value) for i in range(9))
        lines.append(f"l{n}: &l{n} {brackets[0]}{items}{brackets[1]}")
        value = f"*l{n}"
    return "\n".join(lines) + "\n"


def _eval_line(key, expression):
    return f"  {key}: !!python/object/apply:eval [{expression!r}]\n"


MAPPINGS_OF_ALIASES = _nested_aliases("k{i}: {value}", "{}")
COMPREHENSION = f"[[[0 for a in {list(range(40))}] for b in {list(range(40))}] for c in {list(range(40))}]"  # 64,000
CONFIG_PROBES = [  # family, builder (directory -> the config), a fragment of the one line
    ("nested aliases of mappings", _file(MAPPINGS_OF_ALIASES), "cfg.yaml:4: more than 10000 values once its aliases"),
    ("nested aliases of lists", _file(_nested_aliases("{value}", "[]")), "cfg.yaml:5: more than 10000 values once"),
    ("nested aliases in a _BASE_", _base(lambda path: path.write_text(MAPPINGS_OF_ALIASES)),
     "base.yaml:4: more than 10000 values once its aliases are expanded"),
    ("an alias inside its own node", _file("A: &a [1, *a]\n"), "cfg.yaml:1: an alias inside the node it names"),
    ("aliases 100 deep", _file("".join(f"a{n}: &a{n} [*a{n - 1}]\n" if n else "a0: &a0 [1]\n" for n in range(100))),
     "nested deeper than 50 levels once its aliases are expanded"),
    ("a list 10,000 deep", _file("A: " + "[" * 10_000 + "]" * 10_000), "cfg.yaml:1: nested deeper than 50 levels"),
    ("a mapping 5,000 deep", _file("A: " + "{a: " * 5_000 + "1" + "}" * 5_000), "cfg.yaml:1: nested deeper than 50"),
    ("a list 100,000 deep", _file("A: " + "[" * 100_000 + "]" * 100_000), "cfg.yaml: larger than 32768 bytes"),
    ("a mapping 100,000 deep", _file("A: " + "{a: " * 100_000 + "1" + "}" * 100_000), "larger than 32768 bytes"),
    ("a 10,001-digit integer", _file("MODEL:\n  ROI_HEADS:\n    NUM_CLASSES: " + "9" * 10_001 + "\n"),
     "cfg.yaml:3: an integer of 10001 characters, longer than 100"),
    ("eval of 200,000 unary minus signs", _file("MODEL:\n" + _eval_line("SIZES", "-" * 200_000 + "1")),
     "cfg.yaml: larger than 32768 bytes"),
    ("evals of 64,000 values each", _file("MODEL:\n" + _eval_line("A", COMPREHENSION) + _eval_line("B", COMPREHENSION)),
     "cfg.yaml:3: YAML tag !!python/object/apply:eval refused: d2tf computes only arithmetic on numbers and lists; "
     "more than 100000 values"),
    ("a _BASE_ holding a list", _base(lambda path: path.write_text("[1, 2]\n")),
     "base.yaml: a config is a mapping of keys, not a list"),
    ("a _BASE_ holding text", _base(lambda path: path.write_text("just text\n")),
     "base.yaml: a config is a mapping of keys, not a str"),
    ("a _BASE_ chain of 30 files naming the next twice", _doubling_chain,
     "f16.yaml: _BASE_ chain reads more than 16 files"),
    ("a _BASE_ that is a FIFO", _base(os.mkfifo), "base.yaml: not a regular file"),
    ("a _BASE_ that is a directory", _base(os.mkdir), "base.yaml: not a regular file"),
    ("a _BASE_ that is /dev/zero", _file("_BASE_: /dev/zero\n"), "cannot read config /dev/zero: not a regular file"),
    ("a _BASE_ of 10 GB", _base(_sparse_file), "base.yaml: larger than 32768 bytes"),
]


@pytest.mark.parametrize("build, fragment", [row[1:] for row in CONFIG_PROBES], ids=[row[0] for row in CONFIG_PROBES])
def test_hostile_config_is_refused_in_one_line_within_bounds(tmp_path, build, fragment):
    config = build(tmp_path)
    assert fragment in refusal(tmp_path, config, tmp_path / "unread.pkl", SMALL_LOADERS)
