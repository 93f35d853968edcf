"""The detectron2 model to trace: built from the config, loaded with checked weights, wrapped for export."""

import contextlib
import os

import numpy as np
import torch

from core import D2TFError, checkpoint
from core.contract import RPN_OUTPUTS, onnx_outputs


def build_model(cfg, weights):
    """detectron2's model for cfg in eval mode, holding `weights` ({name: ndarray}) after check_weights."""
    from detectron2.modeling import build_model as d2_build_model

    try:
        model = d2_build_model(cfg).eval()
    except (AssertionError, ValueError) as e:  # detectron2's builders check their keys' agreement with asserts
        raise D2TFError(f"detectron2 cannot build this config: {e or 'an assert in its model builder failed'}") \
            from None
    check_weights(model, weights)
    expected = model.state_dict()
    state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in weights.items() if k in expected}
    model.load_state_dict(state, strict=True)
    return model


def check_weights(model, weights):
    """Refuses weights that do not fit the model exactly, naming the missing, unexpected or misshapen tensors
    (every one of them with D2TF_VERBOSE=1)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(np.shape(v)) for k, v in weights.items()}
    problem = checkpoint.describe_mismatch(expected, found, full=os.environ.get(checkpoint.VERBOSE_ENV) == "1")
    if problem:
        raise D2TFError(problem)


class ExportWrapper(torch.nn.Module):
    """image [H, W, 3] float32 BGR 0..255 -> the outputs core.contract.onnx_outputs names for the model's
    meta-architecture (`self.outputs`), in that order.

    The HWC layout is what the final pb takes, so no stage after this one changes the interface. Normalisation
    and padding to the size divisibility happen inside detectron2's preprocess_image, so they are in the graph.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        roi_heads = getattr(model, "roi_heads", None)
        self.outputs = onnx_outputs(type(model).__name__, bool(getattr(roi_heads, "mask_on", False)),
                                    bool(getattr(roi_heads, "keypoint_on", False)))

    def forward(self, image):
        inputs = [{"image": image.permute(2, 0, 1)}]
        model = self.model
        height, width = image.shape[:2]
        if self.outputs == RPN_OUTPUTS:  # ProposalNetwork
            images = _preprocessed(model, inputs)
            proposals = model.proposal_generator(images, model.backbone(images.tensor), None)[0][0]
            return proposals.proposal_boxes.tensor, proposals.objectness_logits
        if "boxes" not in self.outputs:  # SemanticSegmentor: the logits of the padded image, cropped to the image
            images = _preprocessed(model, inputs)
            return model.sem_seg_head(model.backbone(images.tensor), None)[0][0, :, :height, :width]
        if hasattr(model, "head_in_features"):  # a one-stage DenseDetector (RetinaNet): its forward's first half
            images = model.preprocess_image(inputs)
            features = model.backbone(images.tensor)
            features = [features[name] for name in model.head_in_features]
            instances, sem_seg = model.forward_inference(images, features, model.head(features))[0], None
        elif "sem_seg" in self.outputs:  # PanopticFPN: R-CNN's instances and the semantic logits, not combined
            with _kept_proposals(model) as proposals:
                detections, sem_seg = model.inference(inputs, do_postprocess=False)
            instances, sem_seg = detections[0], sem_seg[0, :, :height, :width]
        else:
            with _kept_proposals(model) as proposals:
                instances, sem_seg = model.inference(inputs, do_postprocess=False)[0], None
        outputs = (instances.pred_boxes.tensor, instances.scores, instances.pred_classes)
        if instances.has("pred_masks"):
            outputs += (instances.pred_masks[:, 0],)
        if instances.has("pred_keypoints"):
            outputs += (instances.pred_keypoints,)
        outputs += (sem_seg,) if sem_seg is not None else ()
        if "proposals" in self.outputs:
            outputs += (proposals[0].proposal_boxes.tensor, proposals[0].objectness_logits)
        return outputs


@contextlib.contextmanager
def _kept_proposals(model):
    """A list that receives the proposals (Instances) detectron2's RPN hands the ROI heads, as the model makes them."""
    kept = []
    hook = model.proposal_generator.register_forward_hook(lambda _module, _inputs, output: kept.append(output[0][0]))
    try:
        yield kept
    finally:
        hook.remove()


def _preprocessed(model, inputs):
    """The model's normalised, padded ImageList of `inputs`: its preprocess_image, which detectron2's RPN and
    semantic FPN do inline in their forward instead."""
    from detectron2.structures import ImageList

    if hasattr(model, "preprocess_image"):
        return model.preprocess_image(inputs)
    images = [(x["image"] - model.pixel_mean) / model.pixel_std for x in inputs]
    return ImageList.from_tensors(images, model.backbone.size_divisibility)
