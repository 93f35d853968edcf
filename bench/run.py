"""`make bench`: per architecture, the time and size of each stage and the pb's latency against onnxruntime.

    python bench/run.py [--archs name,...] [--size 512x640] [--out out/bench]

Each stage runs as the user runs it (`python -m ...` in its own process); latencies are the median of 3 runs
after one warm-up, onnxruntime on model.fixed.onnx and the pb through plain tf.compat.v1, at the given size.
Writes <out>/bench.md and prints it.
"""

import os
import statistics
import subprocess
import sys
import time

import numpy as np

from core import D2TFError, cli, zoo
from core.cli import parse_size
from core.synthetic import synthetic_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args):
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"))
    if result.returncode:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def onnxruntime_latency(path, image):
    from runners import onnx_runner

    sess = onnx_runner.session(path)
    onnx_runner.run(sess, image)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        onnx_runner.run(sess, image)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pb_latency(pb, image, work):
    """Median of 3 Session.runs after a first one, in a TensorFlow process of its own."""
    np.save(os.path.join(work, "image.npy"), image)
    code = ("import sys, numpy as np; from runners.pb_runner import run_times; "
            "print(*run_times(sys.argv[1], np.load(sys.argv[2]), 4))")
    result = subprocess.run([sys.executable, "-c", code, pb, os.path.join(work, "image.npy")], capture_output=True,
                            text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"))
    if result.returncode:
        raise SystemExit(f"timing {pb} failed:\n{result.stderr[-2000:]}")
    return statistics.median(float(t) for t in result.stdout.split()[1:])


def bench(config, size, out):
    work = os.path.join(out, zoo.short_name(config))
    os.makedirs(work, exist_ok=True)
    weights = os.path.join(work, "weights.pkl")
    if not os.path.exists(weights):
        run("-m", "d2tf.calibrate", "--config", config, "--out", weights)
    row = {"architecture": zoo.short_name(config)}
    row["export s"] = run("-m", "export", "--config", config, "--weights", weights, "--out", work)
    row["onnx MiB"] = os.path.getsize(os.path.join(work, "model.onnx")) / 2**20
    row["graphfix s"] = run("-m", "graphfix", os.path.join(work, "model.onnx"))
    row["tf_import s"] = run("-m", "tf_import", os.path.join(work, "model.fixed.onnx"), "--out", work)
    row["pb MiB"] = os.path.getsize(os.path.join(work, "model.pb")) / 2**20
    image = synthetic_image(*size, seed=5)
    row["onnxruntime ms"] = 1000 * onnxruntime_latency(os.path.join(work, "model.fixed.onnx"), image)
    row["pb ms"] = 1000 * pb_latency(os.path.join(work, "model.pb"), image, work)
    row["pb / onnxruntime"] = row["pb ms"] / row["onnxruntime ms"]
    return row


def main(argv=None):
    parser = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default=",".join(zoo.short_name(c) for c in zoo.SUITE_ARCHITECTURES))
    parser.add_argument("--size", type=parse_size, default="512x640")
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "bench"))
    args = parser.parse_args(argv)
    wanted = args.archs.split(",")
    known = [zoo.short_name(c) for c in zoo.SUITE_ARCHITECTURES]
    unknown = [a for a in wanted if a not in known]
    if unknown:
        raise D2TFError(f"unknown architecture in --archs: {', '.join(unknown)} (known: {', '.join(known)})")
    rows = []
    for config in zoo.SUITE_ARCHITECTURES:
        if zoo.short_name(config) in wanted:
            print(f"[bench] {zoo.short_name(config)} ...", file=sys.stderr, flush=True)
            rows.append(bench(config, args.size, args.out))
    columns = list(rows[0])
    lines = [f"Measured {time.strftime('%Y-%m-%d')} at {'x'.join(map(str, args.size))}, {os.cpu_count()} cores, "
             "tensorpack RoIAlign mode.",
             "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    with open(os.path.join(args.out, "bench.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    cli.run(main)
