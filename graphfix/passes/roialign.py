"""roialign: give every RoiAlign the RoIAlign semantics of the chosen target.

detectron2's ROIAlignV2 exports as RoiAlign(coordinate_transformation_mode=half_pixel, sampling_ratio=0): an
adaptive ceil(roi_size / output_size) grid of samples per bin. tensorpack (crop_and_resize to twice the output
size, then 2x2 average pooling) is the same operator with exactly 2x2 samples per bin, i.e. sampling_ratio=2
(measured equal in onnxruntime within 1e-5, see docs/tensorpack.md section 4).
- mode "tensorpack" (default): sampling_ratio becomes 2, so the graph computes what tensorpack computes.
- mode "exact": the adaptive grid (sampling_ratio 0, the only one export accepts); the pb reproduces detectron2.
Nothing else in the graph depends on the mode, so the pass also switches an already fixed graph to the other mode.
An unaligned RoiAlign (output_half_pixel: detectron2's ROIAlign v1, whose zoo configs sample 2x2 per bin) is left as
exported in both modes: tensorpack has no unaligned RoIAlign to follow, so detectron2's is the only target.
"""

import onnx

from core import D2TFError

MODES = ("tensorpack", "exact")


def run(model, roialign="tensorpack"):
    if roialign not in MODES:
        raise D2TFError(f"--roialign must be one of {', '.join(MODES)}, not {roialign!r}")
    for node in model.graph.node:
        if node.op_type != "RoiAlign":
            continue
        attrs = {a.name: a for a in node.attribute}
        mode = attrs["coordinate_transformation_mode"].s.decode() if "coordinate_transformation_mode" in attrs \
            else "half_pixel"  # the opset-16 default
        if mode == "output_half_pixel":
            continue
        if mode != "half_pixel":
            raise D2TFError(f"RoiAlign {node.name}: coordinate_transformation_mode={mode}; d2tf expects half_pixel "
                            "(ROIAlignV2) or output_half_pixel (ROIAlign)")
        ratio = 2 if roialign == "tensorpack" else 0
        if "sampling_ratio" in attrs:
            attrs["sampling_ratio"].i = ratio
        else:
            node.attribute.append(onnx.helper.make_attribute("sampling_ratio", ratio))
    return model
