"""report.md: what verify measured, as tables a reviewer reads top to bottom, plus the figures as JSON in an HTML
comment for tools (invisible when rendered). Its title says whether the verification passed or FAILED."""

import json
import os

import core
from core.contract import TFLITE
from verify.agreement import EXACT, KEYPOINT_TIES, NOISE_MULTIPLE, SEM_SEG_ARGMAX, STRICT_IOU
from verify.serving import MASK_EQUAL

FIGURES_MARKER = "d2tf-figures"


def tolerance_text(tolerance):
    """What an exact check requires, in words, with the `tolerance` of each quantity (verify.agreement.EXACT's keys)."""
    return (f"every detection matched at IoU >= {STRICT_IOU} with its label, boxes within {tolerance['box']:.3g} px, "
            f"scores within {tolerance['score']:.3g}, masks within {tolerance['mask']:.3g}, keypoints within "
            f"{tolerance['keypoint']:.3g} px (but up to {KEYPOINT_TIES:.0%} moved by argmax ties) and their scores "
            f"within {tolerance['keypoint_score']:.3g} (instances whose box rounds to another heatmap grid aside), "
            f"semantic logits within {tolerance['sem_seg']:.3g} or their argmax equal on >= {SEM_SEG_ARGMAX:.2%} of "
            "pixels")


_QUANTITIES = {"box": "boxes (px)", "score": "scores", "mask": "masks", "keypoint": "keypoints (px)",
               "keypoint_score": "keypoint scores", "sem_seg": "semantic logits",
               "objectness": "RPN objectness logits (near-ties)"}
MATCHED = f"matched IoU>=0.9 | matched IoU>={STRICT_IOU}"  # two table columns, filled by _matched()


def render(info, mode, figures, evaluation=None):
    source = info.source
    extras = _extra_columns(info)
    headers, rules = "".join(f"{header} | " for header, _ in extras), "---|" * len(extras)
    lines = [
        f"# d2tf verification {'FAILED' if figures['failures'] else 'passed'}: {info.architecture.name}",
        "",
        *_verdict(figures),
        "",
        f"- config: `{source.config}`",
        f"- weights: `{source.weights}` (sha256 `{source.weights_sha256[:16]}...`)",
        f"- RoIAlign in model.fixed.onnx and model.pb: **{mode}**" if info.pooler else
        f"- RoIAlign: none in this {info.architecture.name}, so both --roialign modes are the same graph",
        f"- images: {_images(figures)}, d2tf {core.__version__}",
        "",
        "## Stage by stage",
        "",
        "Each stage against the one before it, on the same images. Detections are matched by label at IoU >= 0.9",
        f"and >= {STRICT_IOU}, not by index (near-equal scores may swap places between runtimes). \"At the edge\":",
        "detections one runtime kept and the other did not, where float round-off decides: one of two same-class",
        "detections of near-equal scores that suppress each other in NMS, or a score near the threshold or near the",
        "lowest of an image at the detections-per-image cap, or a detection overlapping a proposal that one RPN",
        "kept and the other did not by such a near-tie of its own (\"after proposal ties\"; verify/agreement.py,",
        "KeptSet). They are counted, not compared; any other unmatched detection fails an exact check.",
        "",
        f"| stage | against | detections | {MATCHED} | max box diff (px) | max score diff "
        f"| max mask diff | {headers}check |",
        "|---|---|---|---|---|---|---|---|---|" + rules,
        *(f"| {runtime_name(s['stage'])} | {s['against']} | {s['candidate']} vs {s['reference']} | {_matched(s)} | "
          f"{_diffs(s)} | {_cells(extras, s)}{_check(s)} |" for s in figures["stages"]),
        "",
        *_tflite_note(figures["stages"]),
        *(["model.fixed.onnx differs from model.onnx by design: tensorpack's RoIAlign samples 2x2 points per bin where",
           "detectron2 adapts the grid to the box size. The fixed graph switched to exact RoIAlign (a copy verify",
           "makes) must equal model.onnx instead; every other step must agree up to float round-off.", ""]
          if mode == "tensorpack" and info.pooler else []),
        "## Agreement with detectron2",
        "",
        f"Share of detections matched with detectron2's (same label) at IoU >= 0.9 and >= {STRICT_IOU}; agreement AP",
        "is pycocotools' box AP of the converted model taking detectron2's detections as ground truth (1.0: the same).",
        "The other RoIAlign mode runs as its fixed ONNX in onnxruntime (the pb equals it, see tf_import's tests).",
        "",
        f"| model | RoIAlign | runtime | {MATCHED} | max box diff (px) | max score diff "
        f"| agreement AP | AP50 | {headers}check |",
        "|---|---|---|---|---|---|---|---|---|---|" + rules,
        *(f"| {runtime_name(a['model'])} | {a['roialign']} | {a['runtime']} | {_matched(a)} | "
          f"{_diffs(a, mask=False)} | {_optional(a['ap'], '.4f')} | {_optional(a['ap50'], '.4f')} | "
          f"{_cells(extras, a)}{_check(a)} |" for a in figures["agreement"]),
        "",
        *_tensorpack_section(figures.get("tensorpack"), info.architecture.backbone, len(figures["images"])),
        *_serving_section(figures["serving"]),
        *_smaller_tflite_section(figures.get("smaller_tflite")),
        *_noise_section(figures.get("noise"), figures["tolerance"]),
        *_images_section(figures),
        f"![detectron2 (left) and model.pb (right) on {shown_image(figures)}](verify.png)",
        "",
    ]
    if evaluation:
        lines += [evaluation, ""]
    lines += [f"<!-- {FIGURES_MARKER} {json.dumps(figures)} -->", ""]
    return "\n".join(lines)


def shown_image(figures):
    """The image verify.png shows: the first photo, else the first image."""
    return next(iter(figures["files"]), next(iter(figures["images"])))


def _smaller_tflite_section(rows):
    """The smaller TFLite models (--tflite-variant) against detectron2: measured, not gated."""
    if not rows:
        return []
    return [
        "## Smaller TFLite models, measured only",
        "",
        "Each runs in tf.lite.Interpreter as model.tflite does, and is measured against detectron2 as model.tflite",
        "is in the first row (detections matched by label at IoU >= 0.5 and >= 0.9; masks above 0.5 on each box's",
        "grid, the mean IoU of the pairs matched at 0.5): what its precision costs is its row against that one.",
        "Nothing here is gated.",
        "",
        "| model | size (MiB) | matched IoU>=0.5 | matched IoU>=0.9 | agreement AP | AP50 | mask IoU "
        "| max score diff |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| {r['model']} | {r['mib']:.0f} (model.tflite {r['float32_mib']:.0f}) | {r['matched50']:.1%} | "
          f"{r['matched90']:.1%} | {_optional(r['ap'], '.4f')} | {_optional(r['ap50'], '.4f')} | "
          f"{_optional(r['mask_iou'], '.4f')} | {r['score']:.2e} |" for r in rows),
        "",
    ]


def _tflite_note(stages):
    if any(s["stage"] == TFLITE for s in stages):
        return [f"{TFLITE} runs in tf.lite.Interpreter; it must equal the pb up to float round-off.", ""]
    return [f"{TFLITE}: not checked, this conversion wrote none (--no-tflite, or tf_import said why).", ""]


def runtime_name(name):
    """How the report names a runtime of verify's figures."""
    if name.startswith("other:"):
        return f"model.onnx fixed with --roialign {name[len('other:'):]}"
    return "tensorpack's model" if name == "tensorpack" else name


def _verdict(figures):
    if not figures["failures"]:
        return [f"Every check marked *exact* below passed ({tolerance_text(figures['tolerance'])})."]
    return [f"**FAILED** (checks marked *exact* below require {tolerance_text(figures['tolerance'])}):", "",
            *(f"- {line}" for line in figures["failures"])]


def _images(figures):
    files = figures["files"]
    synthetic = [key for key in figures["images"] if key not in files]
    shown = f"{_counted(synthetic, 'synthetic image')} ({', '.join(synthetic)})"
    if files:
        shown += f"; {_counted(files, 'photo')} ({', '.join(os.path.basename(f['path']) for f in files.values())})"
    return shown


def _counted(items, noun):
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _images_section(figures):
    """Each image by name, where it came from, the size it ran at, and detectron2's detections on it: what every
    check on it compares."""
    files, rows, threshold = figures["files"], [], figures["score_threshold"]
    above = figures["above_threshold"]
    for run_by, shapes, detections in [("every stage", figures["images"], figures["detections"]),
                                       *(("the SavedModel, as it comes", row["photos"], row["detections"])
                                         for row in figures["serving"])]:
        rows += [f"| {key} | {_origin(files.get(key))} | {run_by} | {_size(size)} | "
                 f"{_detections(detections[key], above.get(key) if run_by == 'every stage' else None, threshold)} |"
                 for key, size in shapes.items()]
    return [
        "## Images",
        "",
        "Every stage runs on each image as the graph's input (float32; a photo turned upright as its EXIF orientation",
        "says and resized as the config's test resize does), the SavedModel on its photos as they come (uint8 RGB).",
        "Detections: detectron2's on the image, which every check on it compares. The stages run with the score",
        "threshold lowered, so they compare what the detections-per-image cap lets through; how many of those the",
        "model's own threshold keeps is said beside them. The SavedModel runs at the model's threshold.",
        "",
        "| image | from | run by | size (HxW) | detections |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]


def _detections(count, above, threshold):
    if count is None:
        return "none by design"
    return f"{count} ({above} above the threshold {threshold:g})" if above is not None else str(count)


def _origin(file):
    return "synthetic" if file is None else f"`{file['path']}` ({_size(file['size'])} as read)"


def _size(size):
    return "x".join(map(str, size))


def _matched(row):
    if not row["detections"]:
        return "none by design | none by design"
    if row["reference"] == row["candidate"] == 0:
        return "no detections | no detections"
    notes = []
    if row.get("at_the_edge"):
        after = row.get("after_proposal_ties")
        notes.append(f"{row['at_the_edge']} at the edge" + (f", {after} of them after proposal ties" if after else ""))
    if row.get("proposals_alone"):
        notes.append(f"{row['proposals_alone']} proposals kept on one side, {row['proposals_swapped']} of them RPN "
                     "near-ties")
    return f"{row['agreement']:.1%} | {row['strict_agreement']:.1%}" + (f" ({'; '.join(notes)})" if notes else "")


def _diffs(row, mask=True):
    """The largest differences of matched detections; there are none to measure when nothing matched."""
    specs = [("box", ".4f"), ("score", ".2e")] + ([("mask", ".2e")] if mask else [])
    return " | ".join("n/a" if not row["matched"] else _optional(row[key], spec) for key, spec in specs)


def _extra_columns(info):
    """(header, cell of a row) of the tables' columns for the model's outputs beyond boxes, scores and masks."""
    columns = []
    if "keypoints" in info.outputs:
        columns.append(("keypoints: max x/y diff (px), max score diff, moved by argmax ties, instances regridded",
                        _keypoints))
    if "sem_seg" in info.outputs:
        columns.append(("sem_seg: max logit diff, argmax equal", _sem_seg))
    return columns


def _cells(extras, row):
    return "".join(f"{cell(row)} | " for _, cell in extras)


def _keypoints(row):
    if row["keypoint"] is None:
        return "n/a"
    return (f"{row['keypoint']:.4f}, {row['keypoint_score']:.2e}, {row['keypoints_moved']} of "
            f"{row['keypoints_compared']}, {row['keypoints_regridded']}")


def _sem_seg(row):
    return "n/a" if row["sem_seg"] is None else f"{row['sem_seg']:.2e}, {row['sem_seg_argmax']:.4%}"


def _check(row):
    if not row["exact"]:
        return "measured only"
    return "**exact: FAILED**" if row["failures"] else "exact: passed"


def _tensorpack_section(rows, backbone, num_images):
    if not rows:
        return []
    graph = rows[1]
    c4 = ["C4: tensorpack's backbone drops the last row and column before each stride-2 1x1 conv, so on images whose",
          "sides are not multiples of 16 its feature maps are one cell smaller than detectron2's and detections near",
          "the bottom/right edge move; on multiples of 16 it computes the same. Against the graph it is therefore",
          f"compared on the {graph['images']} of {num_images} images whose sides are multiples of 16."
          if graph["exact"] else "not checked for exactness: no image has both sides multiples of 16.", ""]
    return [
        "## tensorpack's own model",
        "",
        "tensorpack's examples/FasterRCNN (`--tensorpack`) with model.npz, configured by tensorpack_config.py, on the",
        "same images: against detectron2, and against the graph with tensorpack's RoIAlign (which it must equal).",
        "",
        *(c4 if backbone == "C4" else []),
        f"| against | detections | {MATCHED} | max box diff (px) | max score diff "
        "| max mask diff | check |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| {runtime_name(r['against'])} | {r['candidate']} vs {r['reference']} | {_matched(r)} | {_diffs(r)} | "
          f"{_check(r)} |" for r in rows),
        "",
    ]


def _noise_section(noise, tolerance):
    """detectron2 against itself: the spread that sets each exact check's tolerance."""
    title = "## detectron2 against itself: the tolerances"
    floor = f"The floor, {', '.join(f'{_QUANTITIES[key]} {value:g}' for key, value in EXACT.items())}, is the tolerance"
    if noise is None:
        return [title, "", floor + ". detectron2's own spread, which can only raise it, was not measured: verify "
                "measures it where a check is outside the floor, or with `--measure-noise`.", ""]
    rows = [f"| {_QUANTITIES[key]} | {noise[key]:.3g} | {EXACT[key]:g} | {tolerance[key]:.3g} |"
            for key in EXACT if noise[key] is not None]
    return [
        title,
        "",
        "detectron2 ran the images again with PyTorch's native convolutions instead of oneDNN's: another valid float32",
        "evaluation of the same model, as far from the first as its own round-off takes it. Each exact check allows",
        f"{NOISE_MULTIPLE} times that spread, and at least the floor (verify/agreement.py).",
        "",
        "| quantity | detectron2 against itself | floor | tolerance |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def _serving_section(rows):
    title = "## The SavedModel on images as they come"
    if not rows:
        return [title, "", "Not checked: this conversion wrote no saved_model (--no-saved-model, or tf_import said "
                "why).", ""]
    row = rows[0]
    masks = "n/a" if row["mask_equal"] is None else f"{row['mask_equal']:.4%}"
    return [
        title,
        "",
        "saved_model's `serving_default` (uint8 RGB in; the test resize, the model and detectron2's postprocessing in",
        "the graph) against detectron2's whole inference (DefaultPredictor's steps) on photos of "
        f"{', '.join(map(_size, row['photos'].values()))} pixels,",
        "compared at image scale; masks by the least share of equal pixels of a matched instance "
        f"(>= {MASK_EQUAL:.1%}).",
        "",
        f"| detections | {MATCHED} | max box diff (px) | max score diff | masks: pixels equal | check |",
        "|---|---|---|---|---|---|---|",
        f"| {row['candidate']} vs {row['reference']} | {_matched(row)} | {_diffs(row, mask=False)} | {masks} | "
        f"{_check(row)} |",
        "",
    ]


def figures_of(text):
    """The figures a report.md holds (for tests and tools)."""
    start = text.index(f"<!-- {FIGURES_MARKER} ") + len(f"<!-- {FIGURES_MARKER} ")
    return json.loads(text[start:text.index(" -->", start)])


def _optional(value, spec):
    return "n/a" if value is None else format(value, spec)
