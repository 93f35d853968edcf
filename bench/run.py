"""`d2tf bench` (`make bench`): per architecture, the time and size of each stage, and each runtime's load time,
first inference and steady latency on one image.

    d2tf bench [--archs name,...] [--size 800x1216] [--runs 4] [--out out/bench]

Each stage runs as the user runs it (`python -m ...` in its own process, tensorpack RoIAlign mode). Each runtime
runs in a process of its own (bench/latency.py): detectron2, onnxruntime on model.onnx, the pb (by default and with
the fast-start config docs/benchmarks.md shows), the SavedModel, the TFLite model and its smaller variants (tf_import
writes every one here); the steady latency is the median of the runs after the first. Each stage's and runtime's
peak resident memory is its process's (the kernel's count). Writes <out>/bench.md and prints it.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench.latency import RUNTIMES
from core import D2TFError, cli, contract, zoo
from core.cli import parse_size
from core.process import stopped_by_signal, wait_with_peak
from core.synthetic import synthetic_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")


class Failed(D2TFError):
    pass


def run(*args):
    """(seconds, peak resident memory in GiB, stdout) of `python args...`; raises Failed with its error if it
    failed."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: read after the child ends, never blocks it
        proc = subprocess.Popen([sys.executable, *map(str, args)], stdout=subprocess.PIPE, stderr=errors, text=True,
                                cwd=ROOT, env=ENV)
        with proc.stdout:
            stdout = proc.stdout.read()
        peak = wait_with_peak(proc) / 2**30
        errors.seek(0)
        stderr = errors.read()
    command = " ".join(map(str, args))
    if proc.returncode < 0:
        raise Failed(stopped_by_signal(command, -proc.returncode))
    if proc.returncode:
        raise Failed(f"{command} failed:\n{stderr[-2000:]}")
    return time.perf_counter() - start, peak, stdout


def latency(runtime, work, image_npy, runs):
    """{"load", "first", "steady", "peak GiB"} of `runtime` (bench/latency.py) in a process of its own, in seconds
    but the peak; a runtime that fails is reported as such and the benchmark goes on."""
    try:
        _, peak, stdout = run("-m", "bench.latency", runtime, work, image_npy, runs)
    except Failed as e:
        cli.log(f"[bench]   {runtime}: {str(e).splitlines()[0]}")
        return {"load": "failed", "first": "failed", "steady": "failed", "first / steady": str(e).splitlines()[0],
                "peak GiB": "failed"}
    measured = json.loads(stdout.strip().splitlines()[-1])
    first, steady = measured["runs"][0], statistics.median(measured["runs"][1:])
    return {"load": measured["load"], "first": first, "steady": steady, "first / steady": first / steady,
            "peak GiB": peak}


def _size_mib(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files) / 2**20
    return os.path.getsize(path) / 2**20


# The file of each runtime that tf_import may not write (a model whose outputs are more than detections).
_READS = {"saved_model": "saved_model", "tflite": contract.TFLITE,
          **{f"tflite_{variant}": name for variant, name in contract.TFLITE_VARIANTS.items()}}


def bench(config, size, runs, out):
    """(stage row, {runtime: latency row}) of one architecture."""
    work = os.path.join(out, zoo.short_name(config))
    os.makedirs(work, exist_ok=True)
    weights = os.path.join(work, "weights.pkl")
    if not os.path.exists(weights):
        run("-m", "d2tf.calibrate", "--config", config, "--out", weights)
    stages = {"architecture": zoo.short_name(config)}
    for stage, args in (("export", ["--config", config, "--weights", weights, "--out", work]),
                        ("graphfix", [os.path.join(work, "model.onnx")]),
                        ("tf_import", [os.path.join(work, "model.fixed.onnx"), "--out", work,
                                       *(arg for variant in contract.TFLITE_VARIANTS
                                         for arg in ("--tflite-variant", variant))])):
        stages[f"{stage} s"], stages[f"{stage} peak GiB"], _ = run("-m", stage, *args)
    for name in ("model.onnx", "model.pb", "saved_model", contract.TFLITE, *contract.TFLITE_VARIANTS.values()):
        path = os.path.join(work, name)
        stages[f"{name} MiB"] = _size_mib(path) if os.path.exists(path) else "not written"
    image_npy = os.path.join(work, "image.npy")
    np.save(image_npy, synthetic_image(*size, seed=5))
    latencies = {}
    for runtime in RUNTIMES:
        if not os.path.exists(os.path.join(work, _READS.get(runtime, "model.onnx"))):
            continue  # tf_import wrote no SavedModel or TFLite model for it, and said why
        print(f"[bench]   {runtime} ...", file=sys.stderr, flush=True)
        latencies[runtime] = latency(runtime, work, image_npy, runs)
    return stages, latencies


def _processor():
    """The CPU's model name (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def _table(rows):
    columns = list(rows[0])
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()) + " |"
              for row in rows)]


def main(argv=None):
    parser = cli.ArgumentParser(
        prog="d2tf bench", description=__doc__.split("\n\n")[0],
        epilog="Reads the suite's configs. Writes OUT/<architecture>/ per architecture, with its calibrated "
        "weights.pkl (once), the stages' files (model.onnx, model.fixed.onnx, model.pb, saved_model/, model.tflite, "
        "...) and image.npy, then OUT/bench.md, also printed.")
    parser.add_argument("--archs", default=",".join(zoo.short_name(c) for c in zoo.SUITE_ARCHITECTURES),
                        help="short names, comma-separated (default: every suite architecture)")
    parser.add_argument("--size", type=parse_size, default="800x1216", metavar="HxW",
                        help="the image every runtime runs on (default 800x1216)")
    parser.add_argument("--runs", type=int, default=4, help="inferences per runtime, the first included (default 4)")
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "bench"),
                        help="directory of each architecture's files and bench.md (default: out/bench)")
    args = parser.parse_args(argv)
    wanted = args.archs.split(",")
    known = [zoo.short_name(c) for c in zoo.SUITE_ARCHITECTURES]
    unknown = [a for a in wanted if a not in known]
    if unknown:
        raise D2TFError(f"unknown architecture in --archs: {', '.join(unknown)} (known: {', '.join(known)})")
    if args.runs < 2:
        raise D2TFError("--runs must be at least 2: the first run and one steady one")
    stage_rows, latency_rows = [], []
    for config in zoo.SUITE_ARCHITECTURES:
        if zoo.short_name(config) in wanted:
            print(f"[bench] {zoo.short_name(config)} ...", file=sys.stderr, flush=True)
            stages, latencies = bench(config, args.size, args.runs, args.out)
            stage_rows.append(stages)
            latency_rows += [{"architecture": stages["architecture"], "runtime": runtime, "load s": row["load"],
                              "first run s": row["first"], "steady s": row["steady"],
                              "first / steady": row["first / steady"], "peak GiB": row["peak GiB"]}
                             for runtime, row in latencies.items()]
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {_processor()}, "
             f"{os.cpu_count()} cores, at {'x'.join(map(str, args.size))}; tensorpack RoIAlign mode; steady: the "
             f"median of {args.runs - 1} runs after the first.", "", *_table(stage_rows), "", *_table(latency_rows)]
    with open(os.path.join(args.out, "bench.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
