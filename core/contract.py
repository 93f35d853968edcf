"""The interface every d2tf model file keeps, from model.onnx to model.pb: defined here once.

Input `image`: float32 [H, W, 3], BGR, 0..255, any H and W (normalisation and padding are inside the graph).
ONNX outputs: boxes [N, 4] (x1, y1, x2, y2 in input pixels), scores [N], classes [N] (int64, 0-based, detectron2's
ids), masks [N, M, M] (sigmoid probabilities of the predicted class; mask models only).
pb outputs, tensorpack's names: output/boxes, output/scores, output/labels (int64, 1-based: 0 is tensorpack's
background), output/masks.
"""

INPUT = "image"
INPUT_DTYPE = "float32"
PB_SCOPE = "output"
LABEL_BASE = 1  # pb label = ONNX class + LABEL_BASE
# graphfix's foldbn adds folded copies of a conv's weight under these suffixes; every other initializer is a
# checkpoint tensor under its detectron2 name.
FOLDED_SUFFIXES = (".bn_folded", ".bn_folded_bias")


def onnx_outputs(mask):
    return ["boxes", "scores", "classes"] + (["masks"] if mask else [])


def pb_outputs(mask):
    return ["boxes", "scores", "labels"] + (["masks"] if mask else [])


def pb_tensor(output):
    """The pb's tensor name of one output, e.g. `output/boxes:0`."""
    return f"{PB_SCOPE}/{output}:0"


def mask_resolution(backbone, pooler_resolution):
    """Side of the masks output: the mask head doubles its pooled map with a deconv; C4's res5 halves it first."""
    return pooler_resolution if backbone == "C4" else pooler_resolution * 2


def labels_to_classes(outputs):
    """A pb's outputs in the ONNX interface: `labels` (1-based) become `classes` (0-based)."""
    outputs = dict(outputs)
    outputs["classes"] = outputs.pop("labels") - LABEL_BASE
    return outputs


def is_checkpoint_tensor(initializer_name):
    return not initializer_name.endswith(FOLDED_SUFFIXES)
