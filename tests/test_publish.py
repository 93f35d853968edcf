"""How `python -m d2tf.convert` writes OUT: the new set of files appears at one instant, on OUT's own filesystem,
one conversion at a time, and failures are one line. The stages are stubbed: these tests run no model."""

import errno
import os
import pathlib
import re
import shlex
import stat
import subprocess
import threading
import time
import uuid

import pytest

from core import D2TFError, zoo
from core.contract import PB, SAVED_MODEL, TENSORPACK_FILES, TFLITE
from core.files import HIDDEN, write_atomic
from core.process import run_module
from d2tf import convert as convert_module
from d2tf.convert import convert
from d2tf.publish import FAILED, FILES, MANIFEST
from tests.processes import ROOT, run_python
from verify.run import VerificationFailed, _work_dir

WRITTEN = FILES + (PB, SAVED_MODEL, TFLITE)  # by every conversion but one with --no-saved-model or --no-tflite
ALL = WRITTEN + TENSORPACK_FILES


class Stages:
    """Stand-ins for the stage processes and verify: verify writes FILES and model.pb with the content `tag` into the
    staging directory, and saved_model, model.tflite and the tensorpack files as `saved_model`, `tflite` and
    `tensorpack` say; tf_import's manifest lists its files and `manifest_adds` (None: there is no manifest); and a
    file goes into verify's work directory."""

    def __init__(self, monkeypatch):
        self.tag, self.tensorpack, self.saved_model, self.failure, self.work_dirs = "1", True, True, None, []
        self.tflite, self.manifest_adds = True, ()
        self.before_verify = lambda: None
        monkeypatch.setattr(convert_module, "run_module", lambda *args, label: None)
        monkeypatch.setattr(convert_module, "verify", self.verify)

    def verify(self, staging, sizes, coco_dir, work_dir, tensorpack_dir, photo_paths, measure_noise):
        self.before_verify()
        if work_dir:  # None: verify would make a temporary one
            os.makedirs(work_dir, exist_ok=True)
            write_atomic(os.path.join(work_dir, "images.npz"), b"working file")
        self.work_dirs.append((staging, work_dir))
        tf_import = ((PB,) + ((SAVED_MODEL,) if self.saved_model else ()) + ((TFLITE,) if self.tflite else ())
                     + (TENSORPACK_FILES if self.tensorpack else ()))
        for name in FILES + tf_import:
            write_atomic(os.path.join(staging, name), self.tag.encode())
        if self.manifest_adds is not None:
            write_atomic(os.path.join(staging, MANIFEST), "\n".join(tf_import + self.manifest_adds).encode())
        if self.failure:
            raise VerificationFailed(self.failure)


@pytest.fixture
def stages(monkeypatch):
    return Stages(monkeypatch)


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "model_final.pkl"
    path.write_bytes(b"weights")
    return path


def _convert(weights, out):
    return convert(zoo.DEFAULT_EXAMPLE, weights, out)  # the stages are stand-ins: only its name is checked


def _contents(directory, names=ALL):
    """{file name: content} of the named files present in `directory`."""
    found = {}
    for name in names:
        try:
            found[name] = (directory / name).read_text()
        except FileNotFoundError:
            pass
    return found


def _visible(out):
    return sorted(name for name in os.listdir(out) if name != HIDDEN)


def _one_set(found):
    """True if `found` is one conversion's files: all of WRITTEN, and all or none of TENSORPACK_FILES, one content."""
    names = set(found)
    return (set(WRITTEN) <= names and names - set(WRITTEN) in (set(), set(TENSORPACK_FILES))
            and len(set(found.values())) == 1)


def test_readers_see_the_old_set_or_the_new_one_never_a_mix(stages, weights, tmp_path, monkeypatch):
    """Conversions with and without the tensorpack files, one after another. A reader reads every file from the
    directory OUT/model.pb leads to; renames are slowed down to widen any gap."""
    out = tmp_path / "out"
    stages.tag = "0"
    _convert(weights, out)
    (out / "notes.txt").write_text("the user's")
    for name in ("rename", "replace"):
        real = getattr(os, name)

        def slow(*args, real=real, **kwargs):
            time.sleep(0.002)
            return real(*args, **kwargs)

        monkeypatch.setattr(os, name, slow)
    seen, done = [], threading.Event()

    def read():
        while not done.is_set():
            directory = os.path.dirname(os.path.realpath(out / "model.pb"))
            found = _contents(pathlib.Path(directory))
            if os.path.dirname(os.path.realpath(out / "model.pb")) == directory:  # else replaced while read
                seen.append(found)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for tag in "1234":
            stages.tag, stages.tensorpack = tag, tag in "24"
            assert (_convert(weights, out) is None) == (tag in "13")
    finally:
        done.set()
        reader.join()
    mixed = [found for found in seen if not _one_set(found)]
    assert not mixed, mixed[:3]
    assert {next(iter(found.values())) for found in seen} <= set("01234") and len(seen) > 100
    assert _visible(out) == sorted(ALL + ("notes.txt",)) and (out / "notes.txt").read_text() == "the user's"
    assert _contents(out) == dict.fromkeys(ALL, "4")
    stages.tag, stages.tensorpack = "5", False
    _convert(weights, out)
    assert _visible(out) == sorted(WRITTEN + ("notes.txt",)), "an earlier conversion's tensorpack files are removed"
    stages.tag, stages.saved_model, stages.tflite = "6", False, False
    convert(zoo.DEFAULT_EXAMPLE, weights, out, saved_model=False, tflite=False)
    assert _visible(out) == sorted(FILES + (PB, "notes.txt")), "and its saved_model and model.tflite, after --no-*"
    stages.manifest_adds = (SAVED_MODEL,)
    with pytest.raises(D2TFError, match="^the stages did not write saved_model$"):
        _convert(weights, out)  # tf_import lists it and wrote none
    hidden = sorted(os.listdir(out / HIDDEN))
    assert len(hidden) == 3 and hidden[:2] == ["current", "lock"] and hidden[2].startswith("set-"), hidden
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(out / HIDDEN / hidden[2]).st_mode) == 0o777 & ~umask, "readable as OUT"


def test_a_second_conversion_into_the_same_out_stops(stages, weights, tmp_path):
    out = tmp_path / "out"
    verifying, release = threading.Event(), threading.Event()
    stages.before_verify = lambda: (verifying.set(), release.wait(30))
    first = threading.Thread(target=_convert, args=(weights, out))
    first.start()
    try:
        assert verifying.wait(30)
        stages.before_verify = lambda: None
        with pytest.raises(D2TFError) as second:
            _convert(weights, out)
    finally:
        release.set()
        first.join()
    assert str(second.value) == f"another conversion (process {os.getpid()}) is writing {out}: wait for it to finish"
    assert _contents(out) == dict.fromkeys(ALL, "1") and len(stages.work_dirs) == 1


def test_out_on_another_filesystem(stages, weights, tmp_path, monkeypatch):
    """OUT is a mount point: a rename or hard link between OUT and anywhere outside it fails with EXDEV."""
    out = tmp_path / "out"
    out.mkdir()

    def inside(path):
        return os.path.abspath(path).startswith(f"{out}{os.sep}")

    for name in ("rename", "replace", "link"):
        real = getattr(os, name)

        def across(src, dst, *args, real=real, **kwargs):
            if inside(src) != inside(dst):
                raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), src, None, dst)
            return real(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, name, across)
    _convert(weights, out)
    assert _contents(out) == dict.fromkeys(ALL, "1")


def test_failed_verification_keeps_out_and_the_failed_set(stages, weights, tmp_path):
    out = tmp_path / "out"
    _convert(weights, out)
    failed = out / FAILED
    for tag in "23":
        stages.tag, stages.tensorpack, stages.failure = tag, tag == "2", "verification FAILED: model.pb: box 3 px"
        with pytest.raises(VerificationFailed) as error:
            _convert(weights, out)
        assert error.value.exit_status == 3
        assert str(error.value) == (f"verification FAILED: model.pb: box 3 px; {out} is unchanged, this conversion "
                                    f"is kept in {failed}")
        assert _contents(out) == dict.fromkeys(ALL, "1")
        assert sorted(os.listdir(failed)) == sorted(ALL if tag == "2" else WRITTEN), "its own files only, no work dir"
        assert _contents(failed) == dict.fromkeys(os.listdir(failed), tag)
    stages.tag, stages.tensorpack, stages.failure = "4", True, None
    _convert(weights, out)
    assert _contents(out) == dict.fromkeys(ALL, "4") and not failed.exists()


def test_killed_runs_working_files_are_removed_by_the_next_conversion(stages, weights, tmp_path):
    """verify's working files stay inside the staging directory; a killed conversion's staging directory, and
    the working directory of a killed `d2tf verify --out OUT`, go with the next conversion."""
    out = tmp_path / "out"
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = [out / HIDDEN / f"staging-{dead.pid}-abc" / "verify", out / HIDDEN / f"verify-{dead.pid}-def",
            out / HIDDEN / "set-ghi"]  # a set a killed run made but did not publish
    running = out / HIDDEN / f"verify-{os.getpid()}-jkl"
    for directory in left + [running]:
        directory.mkdir(parents=True)
        (directory / "images.npz").write_bytes(b"working file")
    _convert(weights, out)
    (staging, work), = stages.work_dirs
    assert os.path.dirname(staging) == str(out / HIDDEN) and work == os.path.join(staging, "verify")
    assert not os.path.exists(staging)
    hidden = sorted(os.listdir(out / HIDDEN))
    assert len(hidden) == 4 and hidden[:2] == ["current", "lock"] and hidden[3] == running.name, hidden
    assert hidden[2].startswith("set-") and not any(os.path.exists(d) for d in left)


def test_verify_alone_works_inside_out(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with _work_dir(None, out) as work:
        assert os.path.dirname(work) == str(out / HIDDEN)
        assert os.path.basename(work).startswith(f"verify-{os.getpid()}-")
    assert not os.path.exists(work)


def test_write_atomic_writes_through_a_link(tmp_path):
    """`d2tf verify --out OUT` rewrites report.md in the published set and keeps OUT's link."""
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "report.md").write_text("old")
    (tmp_path / "report.md").symlink_to(os.path.join("set", "report.md"))
    write_atomic(tmp_path / "report.md", b"new")
    assert os.readlink(tmp_path / "report.md") == os.path.join("set", "report.md")
    assert (tmp_path / "set" / "report.md").read_text() == "new" and os.listdir(tmp_path / "set") == ["report.md"]


@pytest.mark.parametrize("existing", [False, True], ids=["new out", "an earlier conversion"])
def test_a_failed_conversion_leaves_out_as_it_was(existing, stages, weights, tmp_path, monkeypatch):
    out = tmp_path / "out"
    if existing:
        _convert(weights, out)

    def export_fails(*args, label):
        raise D2TFError("export failed: unknown config")

    monkeypatch.setattr(convert_module, "run_module", export_fails)
    with pytest.raises(D2TFError, match="^export failed: unknown config$"):
        _convert(weights, out)
    assert sorted(os.listdir(tmp_path)) == sorted(["model_final.pkl"] + (["out"] if existing else []))
    assert not existing or _contents(out) == dict.fromkeys(ALL, "1")


@pytest.mark.parametrize("adds, message", [
    (("notes.txt",), "tf_import's tf_import.manifest lists model.pb, saved_model, model.tflite, model.npz, "
     "flags.txt, tensorpack_config.py, notes.txt: expected model.pb and any of saved_model, model.tflite, "
     "model.float16.tflite, model.int8.tflite, model.npz, flags.txt, tensorpack_config.py"),
    (("../escape",), "tf_import's tf_import.manifest lists .*, ../escape: expected"),
    (None, "tf_import wrote no tf_import.manifest: it did not finish"),
], ids=["a name tf_import does not write", "a path out of OUT", "no manifest"])
def test_publication_takes_only_what_tf_imports_manifest_may_list(adds, message, stages, weights, tmp_path):
    out = tmp_path / "out"
    stages.manifest_adds = adds
    with pytest.raises(D2TFError, match=f"^{message}"):
        _convert(weights, out)
    assert not out.exists(), "nothing published, and the OUT this run created is gone"


# A user's entries under names a conversion writes: anything but d2tf's own link into its published set.
USERS = {
    "a file": ("report.md", lambda path: path.write_text("the user's")),
    "a directory": ("saved_model", lambda path: path.mkdir()),
    "weights named as the npz": ("model.npz", lambda path: path.write_bytes(b"the user's")),
    "a link elsewhere": ("model.pb", lambda path: path.symlink_to("elsewhere/model.pb")),
    "a link into .d2tf, not its set": ("model.onnx", lambda path: path.symlink_to(f"{HIDDEN}/other/model.onnx")),
}


@pytest.mark.parametrize("earlier", [False, True], ids=["into a new out", "over a conversion"])
@pytest.mark.parametrize("name, make", USERS.values(), ids=USERS)
def test_a_users_entry_under_a_name_d2tf_writes_is_refused_before_any_stage(name, make, earlier, stages, weights,
                                                                             tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    if earlier:
        _convert(weights, out)
        os.remove(out / name)
    make(out / name)
    before = {entry: os.readlink(out / entry) if os.path.islink(out / entry) else None for entry in os.listdir(out)}
    ran = []
    monkeypatch.setattr(convert_module, "run_module", lambda *args, label: ran.append(label))
    with pytest.raises(D2TFError, match=f"^{re.escape(str(out))} holds {name}, which d2tf did not write: a "
                       r"conversion would replace them; move them away or choose another --out \(nothing was "
                       r"changed\)$"):
        _convert(weights, out)
    assert ran == [] and len(stages.work_dirs) == int(earlier), "no stage ran, nor verify"
    assert {entry: os.readlink(out / entry) if os.path.islink(out / entry) else None
            for entry in os.listdir(out)} == before


def test_a_childs_error_line_is_printed_once(tmp_path, monkeypatch, capsys):
    (tmp_path / "failing_child.py").write_text(
        "import sys\nprint('loading', file=sys.stderr)\nprint('error: bad input', file=sys.stderr)\nsys.exit(2)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(D2TFError, match="^child failed: bad input$"):
        run_module("failing_child", label="child")
    assert capsys.readouterr().err == "    loading\n"


@pytest.mark.parametrize("number, says", [
    (9, "^model.tflite \\(TFLite\\) was killed by SIGKILL \\(signal 9\\), most likely by the kernel's out-of-memory "
        "killer .*the machine ran out of memory. Stop other programs"),
    (11, "^model.tflite \\(TFLite\\) crashed with SIGSEGV \\(signal 11\\). .*memory limit"),
    (15, "^model.tflite \\(TFLite\\) was stopped by SIGTERM \\(signal 15\\), sent from outside d2tf$"),
])
def test_a_child_a_signal_ended_is_named_in_one_line_with_its_likely_cause(tmp_path, monkeypatch, number, says):
    (tmp_path / "doomed_child.py").write_text(f"import os\nos.kill(os.getpid(), {number})\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(D2TFError, match=says) as raised:
        run_module("doomed_child", label="model.tflite (TFLite)")
    assert "\n" not in str(raised.value)


def test_wait_with_peak_returns_the_childs_peak_memory():
    """Run from a small parent (the kernel counts a child from before it ran Python, at its parent's size, and this
    test process may be large), as make bench runs its stages."""
    parent = ("import subprocess, sys\n"
              "from core.process import wait_with_peak\n"
              "peak = lambda code: wait_with_peak(subprocess.Popen([sys.executable, '-c', code]))\n"
              "print(peak(\"block = b'x' * (300 << 20)\"), peak('pass'))\n")  # written, so resident
    big, small = map(int, run_python("-c", parent).stdout.split())
    assert big > 300 << 20
    assert small < 200 << 20  # an interpreter


def test_tensorflows_start_up_lines_stay_out_of_the_progress(tmp_path, monkeypatch, capsys):
    """Each TensorFlow process prints these before its log level applies; a conversion starts up to four."""
    banner = ("I0000 00:00:1795624748.773995    7241 port.cc:153] oneDNN custom operations are on. You may see "
              "slightly different numerical results due to floating-point round-off errors.")
    (tmp_path / "tf_child.py").write_text(f"import sys\nprint({banner!r}, file=sys.stderr)\n"
                                          "print('[d2tf] translating', file=sys.stderr)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    run_module("tf_child")
    assert capsys.readouterr().err == "    [d2tf] translating\n"


def _unwritable_parent():
    """A directory that cannot be created, even by root (sysfs), and why."""
    path = f"/sys/d2tf-{uuid.uuid4().hex}"
    try:
        os.mkdir(path)
    except OSError as e:
        return path, e.strerror
    os.rmdir(path)
    pytest.fail(f"{path} could be created")


@pytest.mark.parametrize("case", ["trace size 0x0", "trace size 100000x100000", "verify sizes 480x640,2049x8",
                                  "out below a regular file", "unwritable parent"])
def test_bad_out_and_sizes_give_one_line_errors(case, weights, tmp_path):
    out, extra = tmp_path / "out", []
    if case.startswith(("trace size", "verify sizes")):
        option, value = f"--{case.rsplit(' ', 1)[0].replace(' ', '-')}", case.rsplit(" ", 1)[1]
        extra = [option, value]
        expected = (f"error: d2tf convert: argument {option}: expected HEIGHTxWIDTH of positive numbers "
                    f"up to 2048, e.g. 512x640, got '{value.split(',')[-1]}' (see --help)")
    elif case == "out below a regular file":
        out = weights / "out"
        expected = f"error: cannot create --out {out}: {weights} is not a directory"
    else:
        parent, reason = _unwritable_parent()
        out = os.path.join(parent, "out")
        expected = f"error: cannot create --out {out}: {reason}"
    result = run_python("-m", "d2tf.convert", "--config", zoo.DEFAULT_EXAMPLE, "--weights", weights, "--out", out,
                        *extra)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [expected], "one line"
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == ["model_final.pkl"], "nothing written"


def test_bench_names_unknown_architectures():
    result = run_python("-m", "d2tf", "bench", "--archs", "unknown")  # runs nothing, even unfixed
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown architecture in --archs: unknown (known: faster_rcnn_R_50_C4_3x, ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_makefile_quotes_paths_with_spaces(tmp_path):
    paths = {"MODEL": "my configs/x.yaml", "WEIGHTS": "my weights/m.pkl", "OUT": "my out", "EVALUATE": "my coco"}
    result = subprocess.run(["make", "-n", "-C", ROOT, "convert", "verify", "inspect", "bench", "ARCHS=a,b",
                             *(f"{k}={v}" for k, v in paths.items())], capture_output=True, text=True, check=True)
    commands = {}  # d2tf command -> its arguments
    for line in result.stdout.splitlines():
        if line.startswith(".venv/bin/d2tf "):
            command, *args = shlex.split(line)[1:]
            commands[command] = args
    assert commands["convert"][:6] == ["--config", paths["MODEL"], "--weights", paths["WEIGHTS"], "--out", paths["OUT"]]
    assert commands["convert"][-2:] == ["--evaluate", paths["EVALUATE"]]
    assert commands["verify"][:4] == ["--out", paths["OUT"], "--evaluate", paths["EVALUATE"]]
    assert commands["inspect"][:2] == ["--out", paths["OUT"]]
    assert commands["bench"] == ["--archs", "a,b"]
