"""The detectron2 model to trace: built from the config, loaded with checked weights, wrapped for export."""

import os

import numpy as np
import torch

from core import D2TFError, checkpoint


def build_model(cfg, weights):
    """detectron2's model for cfg in eval mode, holding `weights` ({name: ndarray}) after check_weights."""
    from detectron2.modeling import build_model as d2_build_model

    model = d2_build_model(cfg).eval()
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
    """image [H, W, 3] float32 BGR 0..255 -> boxes [N, 4], scores [N], classes [N] (0-based), masks [N, M, M].

    The HWC layout is what the final pb takes, so no stage after this one changes the interface. Normalisation
    and padding to the size divisibility happen inside detectron2's preprocess_image, so they are in the graph.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        inputs = [{"image": image.permute(2, 0, 1)}]
        if hasattr(self.model, "head_in_features"):  # a one-stage DenseDetector (RetinaNet): its forward's first half
            images = self.model.preprocess_image(inputs)
            features = self.model.backbone(images.tensor)
            features = [features[name] for name in self.model.head_in_features]
            instances = self.model.forward_inference(images, features, self.model.head(features))[0]
        else:
            instances = self.model.inference(inputs, do_postprocess=False)[0]
        outputs = (instances.pred_boxes.tensor, instances.scores, instances.pred_classes)
        if instances.has("pred_masks"):
            outputs += (instances.pred_masks[:, 0],)
        return outputs
