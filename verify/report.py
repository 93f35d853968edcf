"""report.md: what verify measured, as tables a reviewer reads top to bottom, plus the figures as JSON in an HTML
comment for tools (invisible when rendered)."""

import json

import core

FIGURES_MARKER = "d2tf-figures"


def render(info, mode, sizes, figures, evaluation=None):
    source = info["source"]
    lines = [
        f"# d2tf verification: {info['architecture']['name']}",
        "",
        f"- config: `{source['config']}`",
        f"- weights: `{source['weights']}` (sha256 `{source['weights_sha256'][:16]}...`)",
        f"- RoIAlign in model.fixed.onnx and model.pb: **{mode}**",
        f"- images: {len(sizes)} synthetic images ({', '.join(f'{h}x{w}' for h, w in sizes)}), "
        f"d2tf {core.__version__}",
        "",
        "## Stage by stage",
        "",
        "Each stage against the one before it, on the same images. Detections are matched by label at IoU >= 0.9,",
        "not by index (near-equal scores may swap places between runtimes).",
        "",
        "| stage | against | detections | matched | max box diff (px) | max score diff | max mask diff |",
        "|---|---|---|---|---|---|---|",
        *(f"| {s['stage']} | {s['against']} | {s['candidate']} vs {s['reference']} | {s['agreement']:.1%} | "
          f"{s['box']:.4f} | {s['score']:.2e} | {_optional(s['mask'], '.2e')} |" for s in figures["stages"]),
        "",
        *(["model.fixed.onnx differs from model.onnx by design: tensorpack's RoIAlign samples 2x2 points per bin where",
           "detectron2 adapts the grid to the box size. Every other step should agree up to float round-off.", ""]
          if mode == "tensorpack" else []),
        "## Agreement with detectron2",
        "",
        "Share of detections matched with detectron2's (same label) at IoU >= 0.9 and >= 0.99; agreement AP is",
        "pycocotools' box AP of the converted model taking detectron2's detections as ground truth (1.0: the same).",
        "The other RoIAlign mode is measured on its fixed ONNX in onnxruntime (the pb equals it, see tf_import's tests).",
        "",
        "| model | RoIAlign | runtime | matched IoU>=0.9 | matched IoU>=0.99 | max box diff (px) | max score diff "
        "| agreement AP | AP50 |",
        "|---|---|---|---|---|---|---|---|---|",
        *(f"| {_model_name(a)} | {a['roialign']} | {a['runtime']} | {a['agreement']:.1%} | "
          f"{a['strict_agreement']:.1%} | {a['box']:.4f} | {a['score']:.2e} | {_optional(a['ap'], '.4f')} | "
          f"{_optional(a['ap50'], '.4f')} |" for a in figures["agreement"]),
        "",
        *_tensorpack_section(figures.get("tensorpack"), info["architecture"]["backbone"]),
        "![detectron2 (left) and model.pb (right) on the first image](verify.png)",
        "",
    ]
    if evaluation:
        lines += [evaluation, ""]
    lines += [f"<!-- {FIGURES_MARKER} {json.dumps(figures)} -->", ""]
    return "\n".join(lines)


def _tensorpack_section(rows, backbone):
    if not rows:
        return []
    c4 = ["C4: tensorpack's backbone drops the last row and column before each stride-2 1x1 conv, so on images whose",
          "sides are not multiples of 16 its feature maps are one cell smaller than detectron2's and detections near",
          "the bottom/right edge move; on multiples of 16 it computes the same.", ""]
    return [
        "## tensorpack's own model",
        "",
        "tensorpack's examples/FasterRCNN (`--tensorpack`) with model.npz, configured by tensorpack_config.py, on the",
        "same images: against detectron2, and against the graph with tensorpack's RoIAlign (which it should equal).",
        "",
        *(c4 if backbone == "C4" else []),
        "| against | detections | matched IoU>=0.9 | matched IoU>=0.99 | max box diff (px) | max score diff "
        "| max mask diff |",
        "|---|---|---|---|---|---|---|",
        *(f"| {_against(r['against'])} | {r['candidate']} vs {r['reference']} | {r['agreement']:.1%} | "
          f"{r['strict_agreement']:.1%} | {r['box']:.4f} | {r['score']:.2e} | {_optional(r['mask'], '.2e')} |"
          for r in rows),
        "",
    ]


def _against(name):
    return name if name == "detectron2" else _model_name({"model": name, "roialign": "tensorpack"})


def figures_of(text):
    """The figures a report.md holds (for tests and tools)."""
    start = text.index(f"<!-- {FIGURES_MARKER} ") + len(f"<!-- {FIGURES_MARKER} ")
    return json.loads(text[start:text.index(" -->", start)])


def _model_name(row):
    return "model.pb" if row["model"] == "model.pb" else f"model.onnx fixed with --roialign {row['roialign']}"


def _optional(value, spec):
    return "n/a" if value is None else format(value, spec)
