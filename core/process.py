"""Running a stage in its own Python process: PyTorch and TensorFlow crash when they share one, so the driver
and verify start export/PyTorch work and tf_import/TensorFlow work as separate processes."""

import os
import signal
import subprocess
import sys

from core import D2TFError
from core.cli import log

_RUNNING = set()  # children started by run_module and not yet finished, from any thread

# TensorFlow prints these on every start (before its log level applies) on a machine without a GPU, and the
# oneDNN banner on every start where oneDNN is on: once per TensorFlow process, so up to four times a conversion.
# They say nothing a user of d2tf can act on.
_NOISE = ("absl::InitializeLog", "cudart_stub.cc", "Could not find cuda drivers", "oneDNN custom operations are on",
          "Created TensorFlow Lite XNNPACK delegate")

# glibc's malloc returns freed memory at the top of its heap to the kernel, and TensorFlow and PyTorch free and
# allocate hundreds of MB at a time (grappler copies the frozen graph's weights for each of its passes): the kernel
# then zeroes every page again. Keeping 1 GiB of slack on the heap cut a pb run's system time from 6.1 to 3.5 s and a
# conversion's from 28 to 17-19 s of its 120 s of CPU, at no cost in peak memory (measured: R50-FPN Mask, 2 images).
# A user's own setting wins.
MALLOC = {"MALLOC_TOP_PAD_": str(1 << 30)}


def run_module(module, *args, label=None):
    """`python -m module args...`, its progress shown indented; a failure raises one line naming the stage and the
    child's own error line, or the signal that ended it."""
    label = label or module
    env = {**MALLOC, **os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": _pythonpath()}
    proc = subprocess.Popen([sys.executable, "-m", module, *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    _RUNNING.add(proc)
    last_error, last_line = None, None
    try:
        for line in proc.stderr:
            line = line.rstrip("\n")
            if not line.strip() or any(n in line for n in _NOISE):
                continue
            if line.startswith("error: "):  # printed once, in the error raised below that names the stage
                last_error = line[len("error: "):]
                continue
            log(f"    {line}")
            last_line = line
        proc.wait()
    finally:
        _RUNNING.discard(proc)
        if proc.poll() is None:  # interrupted: the child must not go on writing
            proc.kill()
            proc.wait()
    if proc.returncode < 0:
        raise D2TFError(stopped_by_signal(label, -proc.returncode))
    if proc.returncode != 0:
        reason = last_error or last_line or f"exit status {proc.returncode}"
        raise D2TFError(f"{label} failed: {reason}")


def wait_with_peak(proc):
    """Waits for the Popen `proc`; returns its peak resident memory in bytes (the kernel's count, ru_maxrss). The
    kernel counts the child from its start, before it ran Python: at least the parent's own size at the time."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss * 1024  # KiB on Linux


def stopped_by_signal(label, number):
    """One line for a child that a signal ended: which, the likely cause and what to do."""
    try:
        name = f"{signal.Signals(number).name} (signal {number})"
    except ValueError:
        name = f"signal {number}"
    if number == signal.SIGKILL:
        return (f"{label} was killed by {name}, most likely by the kernel's out-of-memory killer (`dmesg` names the "
                "process): the machine ran out of memory. Stop other programs or conversions and run again; `make "
                "bench` shows each stage's and runtime's peak memory")
    if number in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT):
        return (f"{label} crashed with {name}. TensorFlow and PyTorch crash so when an allocation fails under a "
                "memory limit (`ulimit -v`, a container's): raise the limit, or stop other programs, and run again")
    return f"{label} was stopped by {name}, sent from outside d2tf"


def kill_running():
    """Kills every child still running (the caller was interrupted while other threads wait on children)."""
    for proc in list(_RUNNING):
        proc.kill()


def _pythonpath():
    """The stage packages live at the repository root, beside d2tf."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
