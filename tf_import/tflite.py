"""OUT/model.tflite: the pb's model and interface for TFLite (signature serving_default: input `image` [H, W, 3]
float BGR of any size, outputs boxes, scores, labels (1-based) and masks), in TFLite's builtin ops only.

Builtin only, because TF's pip packages have run no TF select ("Flex") ops in tf.lite.Interpreter since 2.19: a
model that needs one loads and then fails on its first run. Where the pb uses an op TFLite lacks, the handlers build
a builtin form when translating for TFLite (tf_import.ops.for_tflite): RoIAlign's CropAndResize as gathers, convs'
explicit padding as a Pad, int64 division in int32, NMS padded and cut to its count (the converter's own form of
TF's NMS loses the count), ScatterND as a select. A model that still needs select ops is refused, naming them."""

import re

from core import D2TFError, contract

SIGNATURE = "serving_default"


class NotConvertible(D2TFError):
    pass


def tflite_bytes(model):
    """The flatbuffer of the graphfix'ed ONNX `model`, translated for TFLite."""
    import tensorflow as tf

    from tf_import.freeze import interface_function

    function = interface_function(model, tflite=True).get_concrete_function()
    # Without a trackable object the converter takes the function's graph as it is; with one it would first write
    # and read back a SavedModel of it: 40 s more on R50-FPN Mask's 95, for the signature added below in 3.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
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
    """The flatbuffer with the signature serving_default: the function's input and outputs by their names."""
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    def tensor_map(name, index):
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = name, index
        return entry

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    index = {graph.tensors[i].name.decode(): i for i in [*graph.inputs, *graph.outputs]}
    keys = tf.nest.flatten({key: key for key in function.structured_outputs})  # the order of function.outputs
    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = SIGNATURE, 0
    signature.inputs = [tensor_map(contract.INPUT, index[contract.INPUT])]
    signature.outputs = [tensor_map(key, index[tensor.name.split(":")[0]])
                         for key, tensor in zip(keys, function.outputs)]
    model.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
