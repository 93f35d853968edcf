"""tf_import/ops/roi_align.py: RoiAlign. Feature coordinates are image ones * spatial_scale; boxes partly off the map,
one tiny."""

import numpy as np

from tests.tf_import.op_cases import EMPTY_INDICES, Case, conv_then, draws, handler_tests, ints, node, one_op

floats, positive = draws(3712)

BOXES = np.array([[2, 2, 12, 10], [0, 0, 23, 19], [-4, -2, 8, 6], [6, 8, 7, 8.4]], np.float32)
ROIS = {"rois": BOXES, "batch": ints([0, 1, 1, 0])}
NO_ROIS = {"rois": np.zeros((0, 4), np.float32), "batch": EMPTY_INDICES}
ALIGN = {"output_height": 3, "output_width": 2, "spatial_scale": 0.5, "coordinate_transformation_mode": "half_pixel"}
FEATURES = {"x": floats(2, 3, 10, 12)}
CHANNELS = {"x": (None, 3, None, None)}  # known in a real graph: sampling_ratio=0 needs them
CHUNKED_BOXES = np.concatenate([BOXES * (1 + i / 4) for i in range(12)])[:45] * 1.5
CASES = [
    *[one_op(f"roi_align_ratio{ratio}{suffix}", "RoiAlign", {**FEATURES, **rois}, sampling_ratio=ratio,
             fixed=CHANNELS, **ALIGN)
      for ratio in (2, 0) for suffix, rois in (("", ROIS), ("_no_boxes", NO_ROIS))],
    # A model's own fixed POOLER_SAMPLING_RATIO, which exact mode keeps.
    *[one_op(f"roi_align_ratio{ratio}", "RoiAlign", {**FEATURES, **ROIS}, sampling_ratio=ratio, fixed=CHANNELS,
             **ALIGN) for ratio in (1, 3)],
    # A box of no area (a degenerate proposal): the adaptive grid has no sample in it and gives 0 (onnxruntime),
    # tensorpack's 2x2 samples all read its one point.
    *[one_op(f"roi_align_empty_box_ratio{ratio}", "RoiAlign",
             {**FEATURES, "rois": np.float32([[8, 6, 8, 6], [2, 2, 12, 10], [5, 5, 5, 9]]), "batch": ints([1, 0, 1])},
             sampling_ratio=ratio, fixed=CHANNELS, **ALIGN)
      for ratio in (2, 0)],
    conv_then("roi_align_nhwc", [node("RoiAlign", ["c", "rois", "batch"], sampling_ratio=0, **ALIGN)],
              inputs={"rois": BOXES, "batch": ints([0, 0, 0, 0])}),
    one_op("roi_align_ratio0_channels_unknown_refused", "RoiAlign", {**FEATURES, **ROIS}, sampling_ratio=0,
           **ALIGN, refused="channel count unknown"),
    # Unaligned (ROIAlign v1): no half-pixel shift, boxes at least one feature pixel wide (the last one is not).
    *[one_op(f"roi_align_unaligned_ratio{ratio}", "RoiAlign", {**FEATURES, **ROIS}, sampling_ratio=ratio,
             fixed=CHANNELS, **{**ALIGN, "coordinate_transformation_mode": "output_half_pixel"})
      for ratio in (2, 0)],
    # For TFLite, RoiAlign and the per-box nodes after it run a chunk of boxes at a time (tf_import/roi_chunks.py):
    # 64 channels sampled 64x64 make a chunk 20 boxes, so these 45 run in three, the last one short. Positive
    # weights: no cancellation, so float32's round-off stays within the cases' tolerance.
    *[Case(f"roi_align_head_in_chunks_ratio{ratio}", [
        node("RoiAlign", ["x", "rois", "batch"], ["r"], sampling_ratio=ratio, output_height=32, output_width=32,
             spatial_scale=0.5), node("Conv", ["r", "w"], ["c"]), node("Relu", ["c"], ["a"]),
        node("ReduceMean", ["a"], ["m"], axes=[2, 3], keepdims=0), node("Gemm", ["m", "fc", "fcb"], ["g"]),
        node("Transpose", ["g"], perm=[1, 0])],
        {"x": floats(2, 64, 20, 24), "rois": CHUNKED_BOXES, "batch": ints(np.arange(len(CHUNKED_BOXES)) ** 2 // 7 % 2)},
        {"w": positive(8, 64, 1, 1), "fc": positive(8, 5), "fcb": floats(5)}, fixed={"x": (None, 64, None, None)})
      for ratio in (2, 0)],
    one_op("roi_align_max_refused", "RoiAlign", {**FEATURES, **ROIS}, mode="max", **ALIGN,
           refused="RoiAlign max with coordinate_transformation_mode=half_pixel"),
    one_op("roi_align_opset15_refused", "RoiAlign", {**FEATURES, **ROIS}, opset=15, sampling_ratio=2,
           refused="opset 15's RoiAlign differs from the opset-16 form"),
]

test_handler, test_handler_in_tflite = handler_tests(CASES)
