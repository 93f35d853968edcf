"""Control flow: Loop as a tf.while_loop, and Identity.

TorchScript writes a scripted Python loop as a Loop (keypoint R-CNN's per-ROI heatmaps_to_keypoints): its body, a
subgraph, runs while the iteration count is below M and the body's condition holds, reading the enclosing graphs'
values by name. The body is translated by the Translator's own walk (tf_import.translate.translate_body), inside
the while_loop. ONNX lets loop-carried values change shape between iterations (a tensor grown by a row each one):
TF's loop keeps only their rank. Scan outputs, one slice per iteration, are TensorArrays stacked after the loop
(refused for TFLite). TFLite runs the rest as its builtin WHILE.
"""

import numpy as np
import onnx
import tensorflow as tf

from tf_import.ops import for_tflite, handles
from tf_import.translate import refuse, translate_body
from tf_import.value import Value

_FOREVER = np.iinfo(np.int64).max  # the trip count of a Loop without M: only its condition stops it


@handles("Identity")
def identity(node, inputs, attrs):
    (x,) = inputs
    return x  # the same Value: its layout and known value carry over


@handles("Loop")
def loop(node, inputs, attrs):
    body = attrs["body"]
    trip_count, condition, initial = inputs[0], inputs[1], inputs[2:]
    carried = len(initial)
    arrays = [_scan_array(node, output) for output in body.output[1 + carried:]]
    limit = _scalar(trip_count) if trip_count is not None else tf.constant(_FOREVER)
    run_body = translate_body(body)

    def step(i, going, *state):
        outputs = run_body([Value(i), Value(going), *map(Value, state[:carried])])
        values = [out.onnx for out in outputs[1:1 + carried]]
        for output, before, after in zip(body.output[1:], state, values):
            if after.shape.rank not in (None, before.shape.rank):
                raise refuse(node, f"loop-carried value {output.name!r} changes rank from {before.shape.rank} to "
                             f"{after.shape.rank}; TF's while_loop keeps ranks")
        slices = [array.write(tf.cast(i, tf.int32), out.onnx)
                  for array, out in zip(state[carried:], outputs[1 + carried:])]
        return (i + 1, _scalar(outputs[0]), *values, *slices)

    going = _scalar(condition) if condition is not None else tf.constant(True)
    # Shapes may change between iterations, ranks not; a TensorArray's invariant is its handle's, a scalar.
    invariants = [tf.TensorShape([]), tf.TensorShape([]), *(tf.TensorShape([None] * v.rank) for v in initial),
                  *(tf.TensorShape([]) for _ in arrays)]
    final = tf.while_loop(lambda i, going, *state: (i < limit) & going, step,
                          [tf.constant(0, tf.int64), going, *(v.onnx for v in initial), *arrays],
                          shape_invariants=invariants)
    return [*final[2:2 + carried], *(array.stack() for array in final[2 + carried:])]


def _scalar(value):
    """M and the conditions, scalars also when given as one-element tensors, as onnxruntime takes them."""
    return tf.reshape(value.onnx, [])


def _scan_array(node, output):
    """An empty TensorArray for a scan output: the body must declare its type and static shape, the shape of the
    slices of a loop that runs no iteration ([0, *shape], as onnxruntime gives)."""
    if for_tflite():
        raise refuse(node, f"scan output {output.name!r} for TFLite, whose converter makes no builtin ops of a "
                     "growing TensorArray")
    declared = output.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else None for d in declared.shape.dim]
    if not declared.elem_type or not declared.HasField("shape") or None in shape:
        raise refuse(node, f"scan output {output.name!r} without a declared type and static shape in the body "
                     "(an empty result, of no iteration, would have none)")
    dtype = tf.as_dtype(onnx.helper.tensor_dtype_to_np_dtype(declared.elem_type))
    return tf.TensorArray(dtype, size=0, dynamic_size=True, element_shape=shape)
