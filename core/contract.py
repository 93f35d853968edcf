"""The interface every d2tf model file keeps, from model.onnx to model.pb: defined here once.

Input `image`: float32 [H, W, 3] in the model's INPUT.FORMAT (BGR unless the config says RGB; the model info's
`input.format`), 0..255, any H and W (normalisation and padding are inside the graph).
ONNX outputs, by meta-architecture (onnx_outputs):
- detectors (R-CNN, RetinaNet, Panoptic FPN): boxes [N, 4] (x1, y1, x2, y2 in input pixels), scores [N], classes [N]
  (int64, 0-based, detectron2's ids), masks [N, M, M] (sigmoid probabilities of the predicted class; mask models
  only), keypoints [N, K, 3] (x, y in input pixels, score, as detectron2's heatmaps_to_keypoints gives them;
  keypoint models only);
- Panoptic FPN and semantic FPN: sem_seg [C, H, W], the per-class logits at the input's size;
- RPN: proposals [P, 4] (x1, y1, x2, y2 in input pixels), objectness [P] (logits), best first; a two-stage detector
  (R-CNN, Panoptic FPN) outputs its RPN's too, after its own outputs: the proposals its ROI heads take, where verify
  finds the proposals a near-tie in the RPN's decisions swaps between runtimes.
pb outputs, tensorpack's names where tensorpack has them: output/boxes, output/scores, output/labels (int64, 1-based:
0 is tensorpack's background), output/masks, output/keypoints, output/sem_seg, output/proposals, output/objectness.
The SavedModel's serving signature takes images as they come and answers in the TF Object Detection API's terms:
input `input_tensor` uint8 [1, H, W, 3] RGB; outputs num_detections [1], detection_boxes [1, N, 4] (ymin, xmin,
ymax, xmax, divided by the image's height and width), detection_scores [1, N], detection_classes [1, N] (float,
1-based), detection_masks [1, N, H, W] (uint8 0/1 at image size; mask models only).
"""

import numpy as np

# The files of a conversion's OUT, by the stage that writes them.
ONNX, MODEL_JSON = "model.onnx", "model.json"  # export: the traced graph and a readable copy of its model info
FIXED_ONNX = "model.fixed.onnx"  # graphfix
PB, SAVED_MODEL, TFLITE = "model.pb", "saved_model", "model.tflite"  # tf_import
# tf_import, on request: model.tflite's smaller variants (tf_import/tflite.py), by --tflite-variant
TFLITE_VARIANTS = {"float16": "model.float16.tflite", "int8": "model.int8.tflite"}
NPZ, FLAGS, TENSORPACK_CONFIG = "model.npz", "flags.txt", "tensorpack_config.py"  # tf_import, for tensorpack
TENSORPACK_FILES = (NPZ, FLAGS, TENSORPACK_CONFIG)  # written together, or none of them
REPORT, VERIFY_PNG = "report.md", "verify.png"  # verify

INPUT = "image"
INPUT_DTYPE = "float32"
PB_SCOPE = "output"
LABEL_BASE = 1  # pb label = ONNX class + LABEL_BASE
# graphfix's foldbn adds folded copies of a conv's weight under these suffixes; every other initializer is a
# checkpoint tensor under its detectron2 name.
FOLDED_SUFFIXES = (".bn_folded", ".bn_folded_bias")


# Every output a d2tf graph may have, in graph order: ONNX name -> pb name.
_PB_NAMES = {"boxes": "boxes", "scores": "scores", "classes": "labels", "masks": "masks", "keypoints": "keypoints",
             "sem_seg": "sem_seg", "proposals": "proposals", "objectness": "objectness"}


RPN_OUTPUTS = ["proposals", "objectness"]
_TWO_STAGE = ("GeneralizedRCNN", "PanopticFPN")  # the meta-architectures whose ROI heads take an RPN's proposals


def onnx_outputs(meta="GeneralizedRCNN", mask=False, keypoints=False):
    """The ONNX outputs of a model of MODEL.META_ARCHITECTURE `meta`, in order."""
    if meta == "ProposalNetwork":
        return list(RPN_OUTPUTS)
    if meta == "SemanticSegmentor":
        return ["sem_seg"]
    heads = ["masks"] * mask + ["keypoints"] * keypoints + ["sem_seg"] * (meta == "PanopticFPN")
    return ["boxes", "scores", "classes"] + heads + RPN_OUTPUTS * (meta in _TWO_STAGE)


def pb_outputs(onnx_names):
    """The pb's output names of ONNX outputs `onnx_names`."""
    return [_PB_NAMES[name] for name in onnx_names]


def pb_outputs_among(node_names):
    """The pb outputs a graph holds, given the names of its nodes, in order."""
    return [name for name in _PB_NAMES.values() if f"{PB_SCOPE}/{name}" in node_names]


def served_outputs(outputs):
    """The detections among `outputs` (boxes, scores, classes, masks): what the SavedModel's serving signature and
    the TFLite model answer, one row per detection."""
    return [name for name in outputs if name in ("boxes", "scores", "classes", "masks")]


def beyond_detections(outputs):
    """The output names among `outputs` that the SavedModel's serving signature and the TFLite model cannot carry:
    all but the detections, and a two-stage detector's proposals, which they leave out."""
    rpn = RPN_OUTPUTS if "boxes" in outputs else []
    return [name for name in outputs if name not in served_outputs(outputs) + rpn]


def has_detections(outputs):
    """Whether a model's outputs (names, or a dict) compare as detections (as_detections): all but a semantic
    FPN's."""
    return "boxes" in outputs or "proposals" in outputs


def as_detections(outputs):
    """Outputs to compare as detections: an RPN's proposals as boxes of one class scored by their objectness;
    anything else (a two-stage detector's, with its RPN's proposals) as it is."""
    if "boxes" in outputs or "proposals" not in outputs:
        return outputs
    return proposals_as_detections(outputs)


def proposals_as_detections(outputs):
    """An RPN's proposals (of an RPN or a two-stage detector) as detections of one class scored by their
    objectness."""
    return {"boxes": outputs["proposals"], "scores": outputs["objectness"],
            "classes": np.zeros(len(outputs["objectness"]), np.int64)}


def pb_tensor(output):
    """The pb's tensor name of one output, e.g. `output/boxes:0`."""
    return f"{PB_SCOPE}/{output}:0"


def mask_resolution(backbone, pooler_resolution):
    """Side of the masks output: the mask head doubles its pooled map with a deconv; C4's res5 halves it first."""
    return pooler_resolution if backbone == "C4" else pooler_resolution * 2


SERVING_SIGNATURE, SERVING_INPUT = "serving_default", "input_tensor"
# The TFLite model's one signature takes INPUT and answers the pb's outputs padded to the detections per image, with
# how many rows are detections in NUM_DETECTIONS.
TFLITE_SIGNATURE, NUM_DETECTIONS = "serving_default", "num_detections"
TENSORPACK_SIGNATURE = "tensorpack"  # the SavedModel's second signature: the pb's interface


# A detector's score threshold is the `score_threshold` input of its box head's NMS (export/per_class_nms.py; RetinaNet
# thresholds nowhere else either), and stays that input in every form: ONNX NonMaxSuppression, TF's
# NonMaxSuppressionV3 and TFLite's NON_MAX_SUPPRESSION_V4 all take it at this index. An NMS that thresholds nothing (an
# RPN's) has none there, or a value at or below NO_SCORE_THRESHOLD (-inf; TFLite's lowest float; in float16 storage,
# float16's lowest).
SCORE_THRESHOLD_INPUT, NO_SCORE_THRESHOLD = 4, -3.0e38
# verify runs every stage with its score threshold lowered to this (runners/lowered.py), so that each compares the
# detections the per-image cap lets through whatever the model's threshold; the threshold is checked on its own.
LOWERED_SCORE_THRESHOLD = 0.0


def serving_outputs(mask):
    return ["num_detections", "detection_boxes", "detection_scores", "detection_classes"] + (
        ["detection_masks"] if mask else [])


def serving_to_detections(outputs, height, width):
    """The serving signature's outputs for one height x width image in the ONNX interface, at image size: boxes
    x1y1x2y2 in pixels, 0-based classes, masks [N, H, W]."""
    boxes = outputs["detection_boxes"][0][:, [1, 0, 3, 2]] * np.float32([width, height, width, height])
    result = {"boxes": boxes, "scores": outputs["detection_scores"][0],
              "classes": outputs["detection_classes"][0].astype(np.int64) - LABEL_BASE}
    if "detection_masks" in outputs:
        result["masks"] = outputs["detection_masks"][0]
    return result


def labels_to_classes(outputs):
    """A pb's outputs in the ONNX interface: `labels` (1-based) become `classes` (0-based)."""
    outputs = dict(outputs)
    if "labels" in outputs:
        outputs["classes"] = outputs.pop("labels") - LABEL_BASE
    return outputs


def is_checkpoint_tensor(initializer_name):
    return not initializer_name.endswith(FOLDED_SUFFIXES)
