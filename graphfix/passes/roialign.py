"""roialign: give every RoiAlign the RoIAlign semantics of the chosen target.

detectron2's ROIAlignV2 exports as RoiAlign(coordinate_transformation_mode=half_pixel, sampling_ratio=the pooler's
POOLER_SAMPLING_RATIO): 0 (the zoo's) is an adaptive ceil(roi_size / output_size) grid of samples per bin, k > 0 a
k x k grid. tensorpack (crop_and_resize to twice the output size, then 2x2 average pooling) is the same operator with
exactly 2x2 samples per bin, i.e. sampling_ratio=2 (measured equal in onnxruntime within 1e-5, see
docs/tensorpack.md section 4).
- mode "tensorpack" (default): sampling_ratio becomes 2, so the graph computes what tensorpack computes.
- mode "exact": each RoiAlign's ratio as exported (the model's metadata keeps them from the first run of the pass);
  the pb reproduces detectron2.
Nothing else in the graph depends on the mode, so the pass also switches an already fixed graph to the other mode.
An unaligned RoiAlign (output_half_pixel: detectron2's ROIAlign v1, whose zoo configs sample 2x2 per bin) is left as
exported in both modes: tensorpack has no unaligned RoIAlign to follow, so detectron2's is the only target.
"""

import onnx

from core import D2TFError, metadata

MODES = ("tensorpack", "exact")


def run(model, roialign="tensorpack"):
    if roialign not in MODES:
        raise D2TFError(f"--roialign must be one of {', '.join(MODES)}, not {roialign!r}")
    aligned = [node for node in model.graph.node if node.op_type == "RoiAlign" and _aligned(node)]
    if aligned:
        metadata.record_exported_sampling(model, {node.name: _sampling_ratio(node) for node in aligned})
    exported = metadata.exported_sampling(model)
    for node in aligned:
        ratio = 2 if roialign == "tensorpack" else exported.get(node.name, 0)
        attrs = {a.name: a for a in node.attribute}
        if "sampling_ratio" in attrs:
            attrs["sampling_ratio"].i = ratio
        else:
            node.attribute.append(onnx.helper.make_attribute("sampling_ratio", ratio))
    return model


def _aligned(node):
    """Whether a RoiAlign is detectron2's ROIAlignV2 (False: ROIAlign v1), or D2TFError for another transform."""
    attrs = {a.name: a for a in node.attribute}
    mode = attrs["coordinate_transformation_mode"].s.decode() if "coordinate_transformation_mode" in attrs \
        else "half_pixel"  # the opset-16 default
    if mode not in ("half_pixel", "output_half_pixel"):
        raise D2TFError(f"RoiAlign {node.name}: coordinate_transformation_mode={mode}; d2tf expects half_pixel "
                        "(ROIAlignV2) or output_half_pixel (ROIAlign)")
    return mode == "half_pixel"


def _sampling_ratio(node):
    return next((a.i for a in node.attribute if a.name == "sampling_ratio"), 0)  # ONNX's default
