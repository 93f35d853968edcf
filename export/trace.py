"""Tracing the wrapped detectron2 model to ONNX (legacy TorchScript exporter, opset 16)."""

import contextlib
import io
import warnings

import onnx
import torch

from core.contract import INPUT, RPN_OUTPUTS
from core.metadata import write_info
from export import deform_conv, keypoint_inference, per_class_nms, retinanet_inference
from export.model import ExportWrapper

OPSET = 16


def trace_to_onnx(model, image):
    """ONNX ModelProto of `model` traced on `image` ([H, W, 3] float32), with H, W and N left dynamic."""
    from detectron2.layers import deform_conv as d2_deform_conv
    from detectron2.modeling.meta_arch import dense_detector, retinanet
    from detectron2.modeling.roi_heads import fast_rcnn, keypoint_head

    wrapper = ExportWrapper(model)
    outputs = wrapper.outputs
    dynamic = {INPUT: {0: "height", 1: "width"}}
    dynamic.update({name: {0: "proposals" if name in RPN_OUTPUTS else "detections"} for name in outputs
                    if name != "sem_seg"})
    if "sem_seg" in outputs:
        dynamic["sem_seg"] = {1: "height", 2: "width"}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad(), _patched(torch.Tensor, "split", _single_image_split), \
            _patched(torch.nn.GroupNorm, "forward", _group_norm_in_short_sums), \
            _patched(fast_rcnn, "fast_rcnn_inference_single_image", per_class_nms.fast_rcnn_inference_single_image), \
            _patched(dense_detector.DenseDetector, "_decode_per_level_predictions",
                     retinanet_inference.decode_per_level_predictions), \
            _patched(retinanet.RetinaNet, "inference_single_image", retinanet_inference.inference_single_image), \
            _patched(keypoint_head, "heatmaps_to_keypoints", keypoint_inference.heatmaps_to_keypoints), \
            _patched(d2_deform_conv, "deform_conv", deform_conv.deform_conv):
        warnings.simplefilter("ignore")  # the tracer warns about every Python int it freezes; tests check results
        torch.onnx.export(
            wrapper,
            (torch.from_numpy(image),),
            buf,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT],
            output_names=outputs,
            dynamic_axes=dynamic,
            do_constant_folding=True,
            # EVAL would fold each FrozenBN into its conv; PRESERVE (on an eval-mode model) keeps them as
            # BatchNormalization nodes whose inputs are the checkpoint's own tensors, under their detectron2 names,
            # which is what the tensorpack npz is derived from. Folding is graphfix's opt-in pass.
            training=torch.onnx.TrainingMode.PRESERVE,
        )
    proto = onnx.load_from_string(buf.getvalue())
    _strip_wrapper_prefix(proto)
    return proto


def _strip_wrapper_prefix(proto, prefix="model."):
    """Initializers are named by parameter path through ExportWrapper (`model.backbone...`); drop the wrapper's
    attribute so each carries exactly its detectron2 checkpoint name."""
    renamed = {i.name: i.name[len(prefix):] for i in proto.graph.initializer if i.name.startswith(prefix)}
    for init in proto.graph.initializer:
        init.name = renamed.get(init.name, init.name)
    for node in proto.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]


def add_provenance(proto, info):
    """Records where the graph came from, visible in Netron's model properties."""
    source = info.source
    proto.doc_string = (f"d2tf {info.d2tf_version}: {info.architecture.name} from {source.config}, "
                        f"weights {source.weights} (sha256 {source.weights_sha256[:16]}...)")
    props = {"d2tf_version": info.d2tf_version, "source_config": source.config, "source_weights": source.weights,
             "weights_sha256": source.weights_sha256, "architecture": info.architecture.name}
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=str(value))
    write_info(proto, info)  # what graphfix and tf_import need, so the file is all they read
    proto.producer_name = "d2tf.export"
    proto.producer_version = info.d2tf_version


def _group_norm_in_short_sums(self, x):
    """nn.GroupNorm.forward while tracing. torch exports GroupNorm as an InstanceNormalization over each group's
    C/G*H*W values, which onnxruntime sums in float32 one after another: on R50-FPN GN Mask R-CNN model.onnx then
    missed detectron2's masks by 1.7e-4, where TensorFlow's kernels stay within 1e-5. The same statistics taken axis
    by axis (W, then H, then the group's channels) are sums of a few hundred values at most, in any runtime."""
    n, c, h, w = x.shape
    groups = x.reshape(n, self.num_groups, c // self.num_groups, h, w)
    centred = groups - _mean_axis_by_axis(groups)
    normalised = (centred / torch.sqrt(_mean_axis_by_axis(centred * centred) + self.eps)).reshape(n, c, h, w)
    return normalised * self.weight.reshape(1, c, 1, 1) + self.bias.reshape(1, c, 1, 1)


def _mean_axis_by_axis(groups):
    """The mean over the last three axes of [N, G, C/G, H, W], kept as [N, G, 1, 1, 1]."""
    return groups.mean(4, keepdim=True).mean(3, keepdim=True).mean(2, keepdim=True)


_tensor_split = torch.Tensor.split


def _single_image_split(self, split_size, dim=0):
    """torch.Tensor.split while tracing. detectron2 splits batched head outputs per image with
    `t.split([len(instances) ...])`. Traced, those Python ints become constants, so the graph would only accept the
    traced number of proposals/detections (a Split node fails on any other count, zero included). With one image the
    split is the identity: make it so."""
    if isinstance(split_size, (list, tuple)) and len(split_size) == 1:
        return (self,)
    return _tensor_split(self, split_size, dim)


@contextlib.contextmanager
def _patched(owner, name, value):
    """`owner.name` is `value` inside the block."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)
