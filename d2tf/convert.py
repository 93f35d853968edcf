"""`python -m d2tf.convert`: the whole pipeline, export -> graphfix -> tf_import -> verify, into one directory.

Each stage runs in its own process (PyTorch and TensorFlow cannot share one) and writes into a staging directory
inside OUT's hidden `.d2tf/`, on OUT's own filesystem (OUT may be a mount point). Only when every stage and the
verification have succeeded does the new set of files replace OUT's, all at the same instant: OUT's files are links
through `.d2tf/current`, which one rename points at the new set. A lock on `.d2tf/lock` keeps a second conversion
out of the same OUT.
"""

import contextlib
import fcntl
import json
import os
import shutil
import signal
import uuid

from core import D2TFError, cli, contract, zoo
from core.cli import parse_size
from core.files import HIDDEN, hidden_work_dir, remove_abandoned
from core.process import run_module
from graphfix.passes import DEFAULT, WITH_FOLDBN
from tf_import.tensorpack_config import FILES as TENSORPACK_FILES
from tf_import.tflite import TFLITE as TFLITE_FILE
from verify.run import DEFAULT_SIZES, VerificationFailed, parse_sizes, verify

FILES = ("model.onnx", "model.json", "model.fixed.onnx", "model.pb", "report.md", "verify.png")  # always written
# A directory, written unless --no-saved-model or the model outputs more than detections (tf_import says why).
SAVED_MODEL = ("saved_model",)
# Unless --no-tflite, the model outputs more than detections, or TFLite's builtin ops cannot express it (tf_import
# says why).
TFLITE = (TFLITE_FILE,)
CURRENT = "current"  # OUT/.d2tf/current -> set-<random>, the published set; OUT/<file> -> .d2tf/current/<file>
LOCK = "lock"  # OUT/.d2tf/lock: flock-ed by the conversion writing OUT, holds its process id
FAILED = ".d2tf-failed"  # OUT/.d2tf-failed: the last conversion that failed verification, kept for inspection
EVERY = FILES + SAVED_MODEL + TFLITE + TENSORPACK_FILES  # what any conversion may write


def conversion_files(saved_model=True):
    """What a conversion of a detector writes besides the tensorpack files and TFLITE: FILES, and SAVED_MODEL with
    `saved_model`."""
    return FILES + (SAVED_MODEL if saved_model else ())


def convert(config, weights, out, roialign="tensorpack", trace_size=(512, 640), verify_sizes=DEFAULT_SIZES,
            coco_dir=None, fold_batchnorm=False, verify_work_dir=None, tensorpack_dir=None, saved_model=True,
            tflite=True):
    """Runs every stage; on success OUT holds FILES, SAVED_MODEL if `saved_model` and TFLITE if `tflite` unless they
    cannot express the model, and TENSORPACK_FILES unless tensorpack cannot. Returns the tensorpack flags line, or
    None without them."""
    weights, out = os.path.abspath(weights), os.path.abspath(out)
    if os.path.isfile(config):  # the model info records it; `make verify` may run from elsewhere
        config = os.path.abspath(config)
    if os.path.exists(out) and not os.path.isdir(out):
        raise D2TFError(f"--out {out} exists and is not a directory")
    zoo.read_yaml(config)  # an unknown or unsafe config fails here, before the export stage imports PyTorch
    if not os.path.isfile(weights):
        raise D2TFError(f"weights file not found: {weights}")
    if coco_dir and not os.path.isdir(coco_dir):
        raise D2TFError(f"COCO-style directory not found: {coco_dir}")
    if tensorpack_dir:
        from runners.tensorpack_runner import check_client

        check_client(tensorpack_dir)
    with _claimed(out), hidden_work_dir(out, "staging") as staging:
        stages = (
            ("export", ["--config", config, "--weights", weights, "--out", staging,
                        "--trace-size", "x".join(map(str, trace_size))]),
            ("graphfix", [os.path.join(staging, "model.onnx"), "--out", os.path.join(staging, "model.fixed.onnx"),
                          "--roialign", roialign, "--passes", ",".join(WITH_FOLDBN if fold_batchnorm else DEFAULT)]),
            ("tf_import", [os.path.join(staging, "model.fixed.onnx"), "--out", staging,
                           *([] if saved_model else ["--no-saved-model"]), *([] if tflite else ["--no-tflite"])]),
        )
        for i, (stage, args) in enumerate(stages, start=1):
            with cli.step(f"stage {i}/4: {stage}"):
                run_module(stage, *args, label=stage)
        with cli.step("stage 4/4: verify"):
            # verify's working files (up to ~180 MB) stay in the staging directory unless the user keeps them.
            _verify(staging, out, verify_sizes, coco_dir, verify_work_dir or os.path.join(staging, "verify"),
                    tensorpack_dir)
        published = _publish(staging, out, conversion_files(saved_model and _served(staging)))
    if "flags.txt" not in published:
        return None
    with open(os.path.join(out, "flags.txt")) as f:
        return f.read().strip()


def _served(staging):
    """Whether the staged model's outputs fit the SavedModel's serving signature (tf_import writes none otherwise)."""
    with open(os.path.join(staging, "model.json")) as f:
        return not contract.beyond_detections(json.load(f)["outputs"])


@contextlib.contextmanager
def _claimed(out):
    """OUT, created if missing and locked against other conversions while the block runs. What killed runs left
    is removed first; a failed run that created OUT leaves none."""
    created = _make_out(out)
    try:
        with _locked(os.path.join(out, HIDDEN)):
            remove_abandoned(out)
            _remove_unpublished_sets(out)
            yield
    finally:
        if created:
            with contextlib.suppress(OSError):  # not empty: the conversion published, or kept a failed one
                os.rmdir(out)


def _make_out(out):
    """Creates OUT if missing, with one clear error if it cannot; True if this run created it."""
    try:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        os.mkdir(out)
    except FileExistsError as e:
        if os.path.isdir(out):
            return False
        raise D2TFError(f"cannot create --out {out}: {e.filename} is not a directory") from None
    except OSError as e:
        raise D2TFError(f"cannot create --out {out}: {e.strerror}") from None
    return True


@contextlib.contextmanager
def _locked(hidden):
    """Holds an exclusive flock on `hidden`/lock while the block runs, or stops at once if another conversion
    holds it. The lock file is removed on the way out when nothing else is left in `hidden`."""
    path = os.path.join(hidden, LOCK)
    while True:
        try:
            os.makedirs(hidden, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the holder removed `hidden` on its way out just now
            continue
        except OSError as e:
            raise D2TFError(f"cannot write into {os.path.dirname(hidden)}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode().strip()
            os.close(fd)
            raise D2TFError(f"another conversion (process {holder or '?'}) is writing {os.path.dirname(hidden)}: "
                            "wait for it to finish") from None
        except OSError as e:  # a filesystem without locks
            os.close(fd)
            raise D2TFError(f"cannot lock {path}: {e.strerror}") from None
        if _is_linked(fd, path):
            break
        os.close(fd)  # the file was removed by the holder between our open and flock: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        if os.listdir(hidden) == [LOCK]:
            os.remove(path)
            os.rmdir(hidden)
        os.close(fd)


def _is_linked(fd, path):
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _verify(staging, out, *args):
    """verify on the staged files; when it fails, they go to OUT/.d2tf-failed instead of into OUT."""
    try:
        verify(staging, *args)
    except VerificationFailed as e:
        failed = os.path.join(out, FAILED)
        shutil.rmtree(failed, ignore_errors=True)
        os.mkdir(failed)
        _move(staging, _staged(staging), failed)
        raise VerificationFailed(f"{e}; {out} is unchanged, this conversion is kept in {failed}") from None


def _staged(staging):
    return [f for f in EVERY if os.path.exists(os.path.join(staging, f))]


def _move(src, names, dst):
    for name in names:
        os.rename(os.path.join(src, name), os.path.join(dst, name))


def _publish(staging, out, required):
    """Makes the staged files OUT's, all at the same instant (the rename of .d2tf/current), removes what an earlier
    conversion wrote that this one did not and the previous set; returns the names published. The stages must have
    written every file in `required`, and all TENSORPACK_FILES or none."""
    written = _staged(staging)
    expected = required + (TENSORPACK_FILES if set(TENSORPACK_FILES) & set(written) else ())
    missing = [f for f in expected if f not in written]
    if missing:
        raise D2TFError(f"the stages did not write {', '.join(missing)}")
    try:
        new = _new_set(out)
        _move(staging, written, new)
        _adopt_plain_files(out)
        for f in written:  # one the current set lacks is a dangling link until the swap: absent, as it was
            _link(out, f)
        _point_current(out, new)
        for f in EVERY:
            if f not in written and os.path.lexists(os.path.join(out, f)):
                os.remove(os.path.join(out, f))
    except OSError as e:
        raise D2TFError(f"cannot publish into {out}: {e.strerror}") from None
    _remove_unpublished_sets(out)
    shutil.rmtree(os.path.join(out, FAILED), ignore_errors=True)
    return written


def _adopt_plain_files(out):
    """Plain files of an earlier conversion in OUT (the layout before sets, or one written over a link) become
    links into the current set, hard-linked there, so that readers see no change until the swap."""
    plain = [f for f in EVERY
             if os.path.isfile(os.path.join(out, f)) and not os.path.islink(os.path.join(out, f))]
    if not plain:
        return
    current = os.path.join(out, HIDDEN, CURRENT)
    if not os.path.isdir(current):
        _point_current(out, _new_set(out))
    for f in plain:  # all of them first: a reader may read every file from where OUT/model.pb leads
        _replace(out, os.path.join(current, f), lambda tmp, f=f: os.link(os.path.join(out, f), tmp))
    for f in plain:
        _link(out, f)


def _new_set(out):
    """A new, empty set directory, as readable as OUT (mkdtemp's would be private to this user)."""
    path = os.path.join(out, HIDDEN, f"set-{uuid.uuid4().hex}")
    os.mkdir(path)
    return path


def _point_current(out, new):
    """.d2tf/current -> the set directory `new`, with one rename: the instant every OUT/<file> changes."""
    _replace(out, os.path.join(out, HIDDEN, CURRENT), lambda tmp: os.symlink(os.path.basename(new), tmp))


def _link(out, name):
    """OUT/name -> .d2tf/current/name."""
    _replace(out, os.path.join(out, name), lambda tmp: os.symlink(os.path.join(HIDDEN, CURRENT, name), tmp))


def _replace(out, path, make):
    """Puts the entry `make(name)` creates at `path` with one rename, replacing what was there."""
    tmp = os.path.join(out, HIDDEN, "new")
    with contextlib.suppress(FileNotFoundError):  # left by a killed run
        os.remove(tmp)
    make(tmp)
    os.replace(tmp, path)


def _remove_unpublished_sets(out):
    """Every set but the current one: the previous one, or one a killed run made but never published."""
    hidden = os.path.join(out, HIDDEN)
    current = os.path.join(hidden, CURRENT)
    published = os.readlink(current) if os.path.islink(current) else None
    for entry in os.listdir(hidden):
        if entry.startswith("set-") and entry != published:
            shutil.rmtree(os.path.join(hidden, entry), ignore_errors=True)


def main(argv=None):
    parser = cli.ArgumentParser(
        prog="python -m d2tf.convert",
        description="Convert a detectron2 R-CNN or RetinaNet to a frozen TensorFlow pb, a SavedModel, TFLite and a "
        "tensorpack npz checkpoint + flags, "
        "verifying every stage. OUT receives: " + ", ".join(EVERY) + f" ({TFLITE_FILE} unless TFLite's builtin "
        "ops cannot express the model, the last three unless tensorpack cannot, with the reason).",
    )
    parser.add_argument("--config", required=True, help=f"model-zoo name (e.g. {zoo.DEFAULT_EXAMPLE}), "
                        "d2tf/... name, or yaml path")
    parser.add_argument("--weights", required=True, help="model_final_*.pkl (model zoo) or .pth (training)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--roialign", choices=("tensorpack", "exact"), default="tensorpack",
                        help="RoIAlign of the pb: tensorpack's sampling ratio 2 (default) or detectron2's exact grid "
                        "(RetinaNet has none: its pb is exact either way)")
    parser.add_argument("--trace-size", type=parse_size, default=(512, 640), metavar="HxW",
                        help="size of the image traced (the outputs take any size; default 512x640)")
    parser.add_argument("--verify-sizes", type=parse_sizes, default=DEFAULT_SIZES, metavar="HxW[,HxW...]",
                        help="synthetic images verify runs through every stage (default: 480x640,600x904)")
    parser.add_argument("--fold-batchnorm", action="store_true", help="fold the BatchNorms into the convs of the pb "
                        "(graphfix's opt-in foldbn pass; the npz keeps tensorpack's unfolded BatchNorm variables)")
    parser.add_argument("--evaluate", metavar="COCO_DIR", help="also report COCO box/mask AP of detectron2 and the "
                        "pb on a COCO-style directory (images + instances json)")
    parser.add_argument("--verify-work-dir", metavar="DIR", help="keep verify's working files in DIR (the images, "
                        "each runtime's raw outputs as npz, the other RoIAlign mode's fixed graph)")
    parser.add_argument("--tensorpack", metavar="DIR", help="verify also runs tensorpack's own model (DIR: a "
                        "tensorpack examples/FasterRCNN checkout) on the npz, as tensorpack_config.py configures it")
    parser.add_argument("--no-saved-model", action="store_true", help="write no saved_model (skips its export "
                        "and verify's check of it on photos; the pb and npz are unchanged)")
    parser.add_argument("--no-tflite", action="store_true", help=f"write no {TFLITE_FILE} (skips its conversion, "
                        "about a minute, and verify's check of it)")
    args = parser.parse_args(argv)
    # SIGTERM (e.g. `kill`, a CI timeout) unwinds like Ctrl-C, so the staging directory is removed. SIGINT is set
    # too: a process started from a shell's background job inherits SIGINT ignored, and Python then installs no
    # handler of its own, so `kill -INT` did nothing (seen when the suite ran as a background job).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.default_int_handler)
    line = convert(args.config, args.weights, args.out, args.roialign, args.trace_size, args.verify_sizes,
                   args.evaluate, args.fold_batchnorm, args.verify_work_dir, args.tensorpack, not args.no_saved_model,
                   not args.no_tflite)
    files = tuple(f for f in conversion_files(not args.no_saved_model) + TFLITE
                  if os.path.lexists(os.path.join(args.out, f)))
    if line is None:
        cli.log(f"[d2tf] done: {args.out} holds {', '.join(files)} (no tensorpack npz: see above)")
        return
    cli.log(f"[d2tf] done: {args.out} holds {', '.join(files + TENSORPACK_FILES)}; use the npz in tensorpack with "
            "these flags (or import tensorpack_config.py, which also registers the class names):")
    print(line, flush=True)


if __name__ == "__main__":
    cli.run(main)
