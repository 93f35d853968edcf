"""graphfix/passes/nms.py: torchvision's empty-input guard lifted, with the same results."""

import numpy as np
import onnx
import pytest

from graphfix.passes import nms
from tests.graphfix.graphs import copy, if_model, op_types, run


@pytest.fixture(scope="module")
def traced_batched_nms():
    """torchvision's batched_nms as the tracer leaves it: NonMaxSuppression inside an empty-input If guard."""
    import io

    import torch
    import torchvision

    class BatchedNMS(torch.nn.Module):
        def forward(self, boxes, scores, classes):
            return torchvision.ops.batched_nms(boxes, scores, classes, 0.5)

    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    boxes, scores, classes = _nms_inputs(rng, 20)
    torch.onnx.export(BatchedNMS(), tuple(map(torch.from_numpy, (boxes, scores, classes))), buf, dynamo=False,
                      opset_version=16, input_names=["boxes", "scores", "classes"], output_names=["keep"],
                      dynamic_axes={"boxes": {0: "n"}, "scores": {0: "n"}, "classes": {0: "n"}, "keep": {0: "k"}})
    return onnx.load_from_string(buf.getvalue())


def _nms_inputs(rng, n):
    xy = rng.uniform(0, 100, size=(n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, size=(n, 2))], axis=1).astype(np.float32)
    return boxes, rng.uniform(size=n).astype(np.float32), rng.integers(0, 3, size=n).astype(np.int64)


def test_nms_lifts_the_guard_and_keeps_results(traced_batched_nms):
    assert "If" in op_types(traced_batched_nms)
    model = nms.run(copy(traced_batched_nms))
    onnx.checker.check_model(model, full_check=True)
    assert "If" not in op_types(model) and "NonMaxSuppression" in op_types(model)
    rng = np.random.default_rng(1)
    for n in (0, 1, 7, 50):
        boxes, scores, classes = _nms_inputs(rng, n)
        (before,) = run(traced_batched_nms, boxes=boxes, scores=scores, classes=classes)
        (after,) = run(model, boxes=boxes, scores=scores, classes=classes)
        np.testing.assert_array_equal(after, before)
        assert (len(after) > 0) == (n > 0)


def test_nms_leaves_other_ifs_alone():
    model = if_model(cond_is_constant=False)
    assert nms.run(copy(model)) == model
