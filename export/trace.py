"""Tracing the wrapped detectron2 model to ONNX (legacy TorchScript exporter, opset 16)."""

import contextlib
import io
import warnings

import onnx
import torch

from export.model import ExportWrapper, output_names

OPSET = 16


def trace_to_onnx(model, image, mask):
    """ONNX ModelProto of `model` traced on `image` ([H, W, 3] float32), with H, W and N left dynamic."""
    outputs = output_names(mask)
    dynamic = {"image": {0: "height", 1: "width"}}
    dynamic.update({name: {0: "detections"} for name in outputs})
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad(), _single_image_splits():
        warnings.simplefilter("ignore")  # the tracer warns about every Python int it freezes; tests check results
        torch.onnx.export(
            ExportWrapper(model),
            (torch.from_numpy(image),),
            buf,
            dynamo=False,
            opset_version=OPSET,
            input_names=["image"],
            output_names=outputs,
            dynamic_axes=dynamic,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buf.getvalue())


def add_provenance(proto, info):
    """Records where the graph came from, visible in Netron's model properties."""
    proto.doc_string = (
        f"d2tf {info['d2tf_version']}: {info['architecture']['name']} from {info['source']['config']}, "
        f"weights {info['source']['weights']} (sha256 {info['source']['weights_sha256'][:16]}...)"
    )
    props = {
        "d2tf_version": info["d2tf_version"],
        "source_config": info["source"]["config"],
        "source_weights": info["source"]["weights"],
        "weights_sha256": info["source"]["weights_sha256"],
        "architecture": info["architecture"]["name"],
    }
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=str(value))
    proto.producer_name = "d2tf.export"
    proto.producer_version = info["d2tf_version"]


@contextlib.contextmanager
def _single_image_splits():
    """detectron2 splits batched head outputs per image with `t.split([len(instances) ...])`. Traced, those
    Python ints become constants, so the graph would only accept the traced number of proposals/detections (a Split
    node fails on any other count, zero included). With one image the split is the identity: make it so."""
    original = torch.Tensor.split

    def split(self, split_size, dim=0):
        if isinstance(split_size, (list, tuple)) and len(split_size) == 1:
            return (self,)
        return original(self, split_size, dim)

    torch.Tensor.split = split
    try:
        yield
    finally:
        torch.Tensor.split = original
