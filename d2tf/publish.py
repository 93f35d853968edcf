"""OUT's files: which a conversion writes, and how they become OUT's (d2tf.convert runs the stages).

The stages write into a staging directory inside OUT's hidden `.d2tf/`, on OUT's own filesystem (OUT may be a mount
point). Only when every stage and the verification have succeeded does the new set of files replace OUT's, all at
the same instant: OUT's files are links through `.d2tf/current`, which one rename points at the new set. A lock on
`.d2tf/lock` keeps a second conversion out of the same OUT.
"""

import contextlib
import fcntl
import os
import shutil
import uuid

from core import D2TFError, contract
from core.contract import TENSORPACK_FILES
from core.files import HIDDEN, remove_abandoned

# export's, graphfix's and verify's files: every conversion writes them.
FILES = (contract.ONNX, contract.MODEL_JSON, contract.FIXED_ONNX, contract.REPORT, contract.VERIFY_PNG)
# tf_import's: the pb, and what the model, the options and tensorpack allow of the others. tf_import lists those it
# wrote in MANIFEST, in the staging directory (its --manifest).
TF_IMPORT = (contract.PB, contract.SAVED_MODEL, contract.TFLITE, *contract.TFLITE_VARIANTS.values(), *TENSORPACK_FILES)
MANIFEST = "tf_import.manifest"
EVERY = FILES + TF_IMPORT  # what any conversion may write
CURRENT = "current"  # OUT/.d2tf/current -> set-<random>, the published set; OUT/<file> -> .d2tf/current/<file>
LOCK = "lock"  # OUT/.d2tf/lock: flock-ed by the conversion writing OUT, holds its process id
FAILED = ".d2tf-failed"  # OUT/.d2tf-failed: the last conversion that failed verification, kept for inspection


@contextlib.contextmanager
def claimed(out):
    """OUT, created if missing and locked against other conversions while the block runs. What killed runs left
    is removed first; a failed run that created OUT leaves none."""
    created = _make_out(out)
    try:
        with _locked(os.path.join(out, HIDDEN)):
            _refuse_foreign(out)
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


def _refuse_foreign(out):
    """Raises D2TFError naming the entries of OUT under the names a conversion writes that are not d2tf's own.
    d2tf knows its own by its record of them, never by name: each is a link into the published set (.d2tf/current)."""
    foreign = [name for name in EVERY if os.path.lexists(os.path.join(out, name)) and not _published(out, name)]
    if foreign:
        raise D2TFError(f"{out} holds {', '.join(foreign)}, which d2tf did not write: a conversion would replace "
                        "them; move them away or choose another --out (nothing was changed)")


def _published(out, name):
    """Whether OUT/name is d2tf's link into the published set."""
    path = os.path.join(out, name)
    return os.path.islink(path) and os.readlink(path) == os.path.join(HIDDEN, CURRENT, name)


def _is_linked(fd, path):
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def staged(staging):
    """The files of a conversion the stages wrote into `staging`."""
    return [f for f in EVERY if os.path.exists(os.path.join(staging, f))]


def keep_failed(staging, out):
    """Moves the staged files of a conversion that failed verification to OUT/.d2tf-failed (replacing an earlier
    one's); returns that directory."""
    failed = os.path.join(out, FAILED)
    shutil.rmtree(failed, ignore_errors=True)
    os.mkdir(failed)
    _move(staging, staged(staging), failed)
    return failed


def _move(src, names, dst):
    for name in names:
        os.rename(os.path.join(src, name), os.path.join(dst, name))


def publish(staging, out):
    """Makes the staged files OUT's, all at the same instant (the rename of .d2tf/current), removes what an earlier
    conversion wrote that this one did not and the previous set; returns the names published: FILES and what
    tf_import's manifest lists, each of which must have been written."""
    written = FILES + _manifest(staging)
    missing = [f for f in written if not os.path.lexists(os.path.join(staging, f))]
    if missing:
        raise D2TFError(f"the stages did not write {', '.join(missing)}")
    _refuse_foreign(out)  # again: a file may have been put there while the stages ran
    try:
        new = _new_set(out)
        _move(staging, written, new)
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


def _manifest(staging):
    """The names tf_import's manifest lists, each one of TF_IMPORT's."""
    try:
        with open(os.path.join(staging, MANIFEST)) as f:
            names = tuple(f.read().split())
    except FileNotFoundError:
        raise D2TFError(f"tf_import wrote no {MANIFEST}: it did not finish") from None
    unknown = [name for name in names if name not in TF_IMPORT]
    if unknown or contract.PB not in names:
        raise D2TFError(f"tf_import's {MANIFEST} lists {', '.join(names)}: expected {contract.PB} and any of "
                        f"{', '.join(TF_IMPORT[1:])}")
    return names


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
