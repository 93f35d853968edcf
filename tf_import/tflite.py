"""OUT/model.tflite: the pb's model and interface for TFLite (signature serving_default: input `image` [H, W, 3]
float BGR of any size, outputs boxes, scores, labels (1-based) and masks), in TFLite's builtin ops only. The
outputs are padded to the model's detections per image, `num_detections` saying how many are real, as the TF Object
Detection API's TFLite models do: TF's Python interpreter refuses to return an empty tensor (GetTensor: "Invalid
tensor size"), which an image without detections would give.

Builtin only, because TF's pip packages have run no TF select ("Flex") ops in tf.lite.Interpreter since 2.19: a
model that needs one loads and then fails on its first run. Where the pb uses an op TFLite lacks, the handlers build
a builtin form when translating for TFLite (tf_import.ops.for_tflite): RoIAlign's CropAndResize as gathers, convs'
explicit padding as a Pad, int64 division in int32, NMS padded and cut to its count (the converter's own form of
TF's NMS loses the count), ScatterND as a select. A model that still needs select ops is refused, naming them.

Smaller models, on request (`--tflite-variant`, contract.TFLITE_VARIANTS): the converter's post-training
quantisations that keep builtin ops, from the same translated function: `float16` stores the weights in half
precision (computed in float32 after loading), `int8` quantises the weights of convolutions and fully connected
layers to int8 with a scale per channel (dynamic range: activations stay float). verify measures what each costs
against detectron2; none is gated."""

import re

from core import D2TFError, cli
from core.contract import NUM_DETECTIONS, TFLITE, TFLITE_SIGNATURE, TFLITE_VARIANTS


class NotConvertible(D2TFError):
    pass


def tflite_bytes(model, detections, variants=()):
    """{file name: flatbuffer}: model.tflite, the graphfix'ed ONNX `model` translated for TFLite, its outputs padded
    to `detections` rows (the model's detections per image, which it never exceeds), and each of `variants`
    (TFLITE_VARIANTS' keys) of it; a variant the converter cannot make in builtin ops is left out, said why."""
    import tensorflow as tf

    from tf_import.freeze import interface_function

    serve = interface_function(model, tflite=True)
    rows = max(detections, 1)

    @tf.function(input_signature=serve.input_signature, autograph=False)
    def padded(image):
        outputs = serve.python_function(image)
        count = tf.shape(outputs["scores"])[0]
        result = {key: _padded(value, count, rows) for key, value in outputs.items()}
        result[NUM_DETECTIONS] = tf.reshape(count, [1])
        return result

    function = padded.get_concrete_function()
    files = {TFLITE: converted(function)}
    for variant in dict.fromkeys(variants):
        try:
            files[TFLITE_VARIANTS[variant]] = converted(function, variant)
        except NotConvertible as e:
            cli.log(f"[d2tf] no {TFLITE_VARIANTS[variant]}: {e}")
    return files


def _padded(value, count, rows):
    """`value` [count, ...] padded with zeros to [rows, ...], with `rows` in its static shape."""
    import tensorflow as tf

    pads = [[0, rows - count]] + [[0, 0]] * (value.shape.rank - 1)
    shape = [rows, *(-1 if d is None else d for d in value.shape[1:])]
    if shape.count(-1) > 1:
        shape = tf.concat([[rows], tf.shape(value)[1:]], 0)
    return tf.reshape(tf.pad(value, pads), shape)


def converted(function, variant=None):
    """The flatbuffer of a concrete function translated for TFLite, in builtin ops only, with the signature
    serving_default: the function's inputs by their placeholders' names, its outputs by their keys; `variant`: one
    of TFLITE_VARIANTS' quantisations."""
    import tensorflow as tf

    # Without a trackable object the converter takes the function's graph as it is; with one it would first write
    # and read back a SavedModel of it: 40 s more on R50-FPN Mask's 95, for a signature added here in 3.
    from absl import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.ERROR)  # its warning that this path is deprecated, once per conversion
    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    finally:
        logging.set_verbosity(verbosity)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # alone: int8 weights, dynamic range
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        flatbuffer = converter.convert()
    except Exception as e:  # the converter raises its ConverterError with the MLIR diagnostics
        needed = re.search(r"TF Select ops: (.*)", str(e))
        if needed is None:
            raise
        raise NotConvertible(f"TFLite cannot run this model with builtin ops: it needs TF's {needed.group(1)} (TF "
                             "select ops, which tf.lite.Interpreter no longer runs); give their handlers a "
                             "builtin form for TFLite (tf_import.ops.for_tflite)") from None
    return _with_signature(flatbuffer, function)


def _with_signature(flatbuffer, function):
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    index = {graph.tensors[i].name.decode(): i for i in [*graph.inputs, *graph.outputs]}

    def tensor_map(name, tensor):
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = name, index[tensor.name.split(":")[0]]
        return entry

    keys = tf.nest.flatten({key: key for key in function.structured_outputs})  # the order of function.outputs
    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = TFLITE_SIGNATURE, 0
    signature.inputs = [tensor_map(tensor.name.split(":")[0], tensor) for tensor in function.inputs]
    signature.outputs = [tensor_map(key, tensor) for key, tensor in zip(keys, function.outputs)]
    model.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
