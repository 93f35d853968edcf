"""Running a model on images: detectron2 (PyTorch), onnxruntime on an ONNX file, and the frozen pb (TensorFlow).
PyTorch and TensorFlow crash when they share a process, so `processes` starts each in its own."""
