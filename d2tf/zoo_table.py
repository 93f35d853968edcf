"""`d2tf zoo [--write docs/zoo.md]`: one row per yaml config of detectron2's model zoo (its
quick_schedules test configs aside): what d2tf delivers for it, or why it refuses it, which architecture of the
test suite stands for it, and how closely that architecture's pb agreed with detectron2 when the suite last recorded
it (zoo_agreement.json, written by `make zoo-table`). docs/zoo.md's table is this output; tests/test_zoo_table.py
keeps the two equal."""

import functools
import glob
import json
import os
import re

from core import D2TFError, cli, zoo
from core.files import write_atomic
from verify.agreement import NOISE_MULTIPLE, stated_tolerance

BEGIN, END = "<!-- zoo-table: d2tf zoo --write docs/zoo.md -->", "<!-- /zoo-table -->"
# {suite architecture's short name: its exact-mode figures against detectron2}, from the suite (record_agreement).
AGREEMENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zoo_agreement.json")


def zoo_configs():
    """The zoo's model yaml names (e.g. COCO-Detection/faster_rcnn_R_50_C4_1x.yaml), sorted."""
    root = zoo.configs_dir()
    paths = glob.glob(os.path.join(root, "*", "*.yaml"))
    return sorted(os.path.relpath(p, root) for p in paths
                  if p.split(os.sep)[-2] != "quick_schedules" and not os.path.basename(p).startswith("Base-"))


def row(config, recorded=None):
    """(config, delivered, why or checked as, agreement measured) of one zoo config; `recorded`: the agreement file's
    content, read here if not given."""
    from export.info import model_info
    from export.supported import check_supported
    from tf_import.tensorpack_config import NotExpressible, check_expressible

    try:
        cfg = zoo.load_config(config)
        arch, tuned = check_supported(cfg)
    except D2TFError as e:
        return config, "refused", _short(str(e)), ""
    tested, equal = zoo.suite_config(config, arch.reference_config), not tuned
    if tested == arch.reference_config and config not in zoo.SUITE_ARCHITECTURES and tuned:
        tested = _suite_graphs().get(_graph(arch, tuned), tested)  # a suite config tuned as this one is
        equal = tested != arch.reference_config
    tested = zoo.short_name(tested)
    why = f"{arch.name}: " + ("converted in the suite" if config in zoo.SUITE_ARCHITECTURES
                              else "the suite converts no model of this architecture (docs/zoo.md says how it was "
                                   "verified)" if zoo.short_name(config) == tested
                              else f"graph-changing keys equal those of `{tested}`" if equal
                              else f"graph-changing keys those of `{tested}` but tuned {', '.join(tuned)}")
    try:  # the model info as export writes it, but for the weights' digest and the traced size
        check_expressible(model_info(cfg, (arch, tuned), config, os.devnull, (0, 0)))
    except NotExpressible as e:
        return config, "pb", f"{why}. No npz: {e}", measured(tested, recorded)
    return config, "pb, npz", why, measured(tested, recorded)


def _graph(arch, tuned):
    return arch, json.dumps(tuned, sort_keys=True)


@functools.lru_cache(maxsize=None)
def _suite_graphs():
    """{_graph: config} of the configs the suite converts whose keys are tuned from their reference (the first of
    each graph): a zoo config tuned the same way is tested as that one."""
    from export.supported import check_supported

    graphs = {}
    for config in zoo.SUITE_ARCHITECTURES:
        arch, tuned = check_supported(zoo.load_config(config))
        if tuned:
            graphs.setdefault(_graph(arch, tuned), config)
    return graphs


def measured(tested, recorded=None):
    """The suite's last recorded figures for the architecture tested as `tested` (short name), as a table cell."""
    figures = (recorded_agreement() if recorded is None else recorded).get(tested)
    if figures is None:
        return "not recorded"
    parts = []
    if figures["matched_iou99"] is not None:  # a semantic FPN detects nothing
        parts.append(f"{figures['matched_iou99']:.0%} matched at IoU >= 0.99; boxes {figures['box_px']:.2g} px, "
                     f"scores {figures['score']:.2g}" + (f", masks {figures['mask']:.2g}" if figures["mask"] is not None
                                                         else ""))
    if figures.get("keypoint_px") is not None:
        moved = f" ({figures['keypoints_moved']} moved by argmax ties)" if figures["keypoints_moved"] else ""
        parts.append(f"keypoints {figures['keypoint_px']:.2g} px{moved}, their scores {figures['keypoint_score']:.2g}")
    if figures.get("sem_seg") is not None:
        parts.append(f"semantic logits {figures['sem_seg']:.2g}, argmax equal on {figures['sem_seg_argmax']:.4%} of "
                     "pixels")
    if figures.get("tolerance", stated_tolerance()) != stated_tolerance():  # the suite's undamped checkpoints
        edge = f", {figures['at_the_edge']} detections at the edge of the kept set" if figures["at_the_edge"] else ""
        parts.append(f"detectron2's own spread above the floor, tolerances {NOISE_MULTIPLE}x it{edge}")
    return f"{figures['runtime']}: " + "; ".join(parts)


def recorded_agreement(path=None):
    try:
        with open(path or AGREEMENT) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def record_agreement(path, tested, figures):
    """Sets one architecture's figures in the agreement file at `path` (the suite calls this under `make zoo-table`)."""
    recorded = recorded_agreement(path)
    recorded[tested] = figures
    write_atomic(path, (json.dumps(recorded, indent=1, sort_keys=True) + "\n").encode())


def table():
    recorded = recorded_agreement()
    rows = [row(c, recorded) for c in zoo_configs()]
    delivered = sum(r[1] != "refused" for r in rows)
    lines = [BEGIN, f"{delivered} of the zoo's {len(rows)} model configs convert. The suite converts one config per "
             "architecture and asserts that in exact RoIAlign mode it matches detectron2 on every detection at "
             "IoU >= 0.99 (boxes <= 0.05 px, scores and masks <= 1e-4, keypoints <= 0.05 px; an RPN's proposals as "
             "detections; semantic logits <= 1e-4 or their argmax equal on >= 99.99% of pixels), or, for the "
             "suite's undamped checkpoints, whose runtimes differ by more, within 10 times detectron2's own spread "
             "with the detections at the edge of the kept set counted (README, verify); a config whose "
             "graph-changing keys equal "
             "that config's (export/supported.py compares every one) differs only in values the graph carries: "
             "class count, thresholds, detection counts, pixel statistics. The last column is that architecture in "
             "exact RoIAlign mode against detectron2 on the images the suite's verify runs, as `make zoo-table` last "
             "recorded it: the pb (TensorFlow), or for the suite's tensorpack-mode builds their exact ONNX graph "
             "(onnxruntime; the tests check that the pb computes the same). Every `make test` checks each "
             "architecture's recorded runtime and share of matched detections against its own run.", "",
             "| zoo config | delivered | checked as, or why refused | exact mode vs detectron2 |", "|---|---|---|---|"]
    lines += [f"| `{c}` | {d} | {why} | {agreement} |" for c, d, why, agreement in rows]
    return "\n".join(lines + [END])


def _short(message):
    """An error in a table cell: the zoo's directory left out, the reason after the common prefix, one problem
    (with a count of the others)."""
    message = message.replace(zoo.configs_dir() + os.sep, "").replace("|", "/")
    message = message.removeprefix("unsupported config, refusing to convert: ")
    problems = re.split(r"; (?=MODEL\.)", message)
    return problems[0] + (f" (and {len(problems) - 1} more keys)" if len(problems) > 1 else "")


def write(document):
    """Replaces the table between the markers in `document` (docs/zoo.md)."""
    try:
        with open(document) as f:
            text = f.read()
    except OSError as e:
        raise D2TFError(f"cannot read {document}: {e.strerror}") from None
    if BEGIN not in text or END not in text:
        raise D2TFError(f"{document} has no zoo-table markers ({BEGIN} ... {END})")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    write_atomic(document, (text[:start] + table() + text[end:]).encode())


def main(argv=None):
    parser = cli.ArgumentParser(
        prog="d2tf zoo", description="Print the table of detectron2's model-zoo configs: what d2tf delivers for each, "
        "or why it refuses it (docs/zoo.md's table; tests/test_zoo_table.py keeps the two equal).",
        epilog="Reads detectron2's model-zoo .yaml configs and d2tf/zoo_agreement.json (the suite's recorded "
        "figures). Writes the table (markdown) to stdout, or with --write between DOC's zoo-table markers.")
    parser.add_argument("--write", metavar="DOC", help="replace the table between the zoo-table markers in DOC "
                        "(docs/zoo.md)")
    args = parser.parse_args(argv)
    if args.write:
        write(args.write)
    else:
        print(table())


if __name__ == "__main__":
    cli.run(main)
