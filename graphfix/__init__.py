"""Stage 2 of d2tf: named ONNX passes that make the traced graph TensorFlow/tensorpack-ready.

    python -m graphfix <dir>/model.onnx --out <dir>/model.fixed.onnx [--roialign tensorpack|exact] [--passes ...]

Each pass (graphfix/passes/<name>.py) takes a ModelProto and returns a valid one that still runs in onnxruntime.
"""
