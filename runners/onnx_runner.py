"""Running an exported ONNX graph in onnxruntime (the reference every later stage is compared with)."""

import os

import onnxruntime as ort

from core.files import load_onnx
from runners import lowered


def session(onnx_path, lower_from=None):
    """An onnxruntime session of the ONNX file; with `lower_from` (the model info's score threshold), of the model
    with that threshold checked and lowered (runners/lowered.py)."""
    model = str(onnx_path)
    if lower_from is not None:
        model = lowered.onnx_model(load_onnx(onnx_path), lower_from, os.path.basename(onnx_path)).SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the traced graph triggers harmless shape-merge warnings
    # No arena: C4 heads make ~1 GB intermediates, and an arena would keep its peak for the session's life.
    options.enable_cpu_mem_arena = False
    # Idle threads sleep instead of spinning: verify runs this beside its TensorFlow and PyTorch children, and on a
    # loaded 2-core machine spinning doubled a run's time (4.5 s against 2.4 s, R50-FPN Mask, two small images).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def run(sess, image):
    """{output name: ndarray} for one HxWx3 float32 BGR image."""
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {"image": image})))
