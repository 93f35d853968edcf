"""Translates and runs every op handler case (tests/tf_import/op_cases.py), all in one TensorFlow process.

    python tests/children/ops_runner.py DIR [--tflite]

With --tflite, each case is translated for TFLite, converted as tf_import/tflite.py converts a model (builtin ops
only) and run in tf.lite.Interpreter.

Each folder DIR/<case> holds model.onnx and inputs.npz (the graph inputs). The model's input shapes say what the
translation knows: a fixed dim is fixed in the tf.function's input signature, a named one is None there, as in
a real pb whose image size is unknown. The folder gets outputs.npz (the graph outputs, ONNX layout) or error.json
({"message", "refused"}; refused when it is a D2TFError, the one line a user would see). DIR/ops.json gets the
op types with a registered handler. Run as a subprocess: TensorFlow must not share a process with PyTorch.
"""

import json
import os
import sys
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import tensorflow as tf  # noqa: E402

from core import D2TFError  # noqa: E402
from tf_import.ops import load_all  # noqa: E402
from tf_import.tflite import converted  # noqa: E402
from tf_import.translate import Translator  # noqa: E402


def run_case(folder, tflite=False):
    model = onnx.load(folder / "model.onnx")
    inputs = dict(np.load(folder / "inputs.npz"))
    try:
        function = translated(model, inputs, tflite)
        outputs = in_tflite(function, inputs) if tflite else function(*inputs.values())
        outputs = {output.name: outputs[output.name] for output in model.graph.output}  # the graph's order
    except Exception as error:  # recorded for the test to judge; the other cases still run
        refused = isinstance(error, D2TFError)
        message = str(error) if refused else traceback.format_exc()
        (folder / "error.json").write_text(json.dumps({"message": message, "refused": refused}))
        return
    np.savez(folder / "outputs.npz", **{name: np.asarray(tensor) for name, tensor in outputs.items()})


def in_tflite(function, inputs):
    """The outputs of the function converted to TFLite and run in tf.lite.Interpreter. An empty output is read from
    its shape: the Python interpreter refuses to return a tensor of 0 bytes (which is why model.tflite's outputs
    are padded)."""
    interpreter = tf.lite.Interpreter(model_content=converted(function.get_concrete_function()))
    signature = interpreter.get_signature_runner()
    fed, fetched = signature.get_input_details(), signature.get_output_details()
    del signature  # it holds the interpreter's buffers, which resizing must not have
    for name, value in inputs.items():
        interpreter.resize_tensor_input(fed[name]["index"], value.shape)
    interpreter.allocate_tensors()
    for name, value in inputs.items():
        interpreter.set_tensor(fed[name]["index"], value)
    interpreter.invoke()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    outputs = {}
    for name, output in fetched.items():
        shape, dtype = details[output["index"]]["shape"], details[output["index"]]["dtype"]
        outputs[name] = np.zeros(shape, dtype) if 0 in shape else interpreter.get_tensor(output["index"])
    return outputs


def translated(model, inputs, tflite=False):
    """The Translator as a tf.function taking the inputs positionally, with the model's input shapes."""
    translator = Translator(model, tflite=tflite)
    shapes = {i.name: [d.dim_value if d.HasField("dim_value") else None for d in i.type.tensor_type.shape.dim]
              for i in model.graph.input}
    signature = [tf.TensorSpec(shapes[name], tf.as_dtype(array.dtype), name=name) for name, array in inputs.items()]
    return tf.function(lambda *tensors: translator(**dict(zip(inputs, tensors))), input_signature=signature,
                       autograph=False)


def main(directory, *flags):
    directory = Path(directory)
    (directory / "ops.json").write_text(json.dumps(sorted(load_all())))
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        run_case(folder, tflite="--tflite" in flags)


if __name__ == "__main__":
    main(*sys.argv[1:])
