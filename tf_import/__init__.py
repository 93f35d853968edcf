"""Stage 3 of d2tf: the fixed ONNX graph -> a frozen TensorFlow pb with tensorpack's predict.py interface.

    python -m tf_import <dir>/model.fixed.onnx --out <dir>

TensorFlow side only: never import torch or detectron2 in this process (they crash together, see docs/install.md).
"""

import os

# TensorFlow's C++ start-up chatter (CPU features, absent CUDA) is not for users; real errors still raise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
