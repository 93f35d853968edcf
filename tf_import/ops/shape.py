"""Shape and layout ops: Shape, Reshape, Flatten, (Un)Squeeze, Expand, Tile, Concat, Split, Slice, Transpose,
Constant, ConstantOfShape, Range. All work on the ONNX layout; shapes are int64 as in ONNX."""

import numpy as np
import tensorflow as tf

from tf_import.ops import for_tflite, handles
from tf_import.ops.elementwise import floor_divide
from tf_import.translate import refuse
from tf_import.value import NotKnown, Value


def _axes(values, x, added=0):
    """Axes counting from the end made non-negative, against the rank of x plus `added` (Unsqueeze's new axes).
    The rank is read only when needed: it may be unknown when translating."""
    if all(a >= 0 for a in values):
        return list(values)
    rank = x.rank + added
    return [a + rank if a < 0 else a for a in values]


def axes_argument(inputs, attrs):
    """The axes of Squeeze, Unsqueeze and ReduceSum: an attribute before opset 13, an input since; None if
    neither is given."""
    if len(inputs) > 1 and inputs[1] is not None:
        return inputs[1].int_list()
    return attrs.get("axes")


@handles("Shape")
def shape(node, inputs, attrs):
    (x,) = inputs
    if x.held_nhwc:  # ONNX's dims without transposing the tensor for them
        dims = tf.gather(tf.shape(x.nhwc, out_type=tf.int64), [0, 3, 1, 2])
    else:
        dims = tf.shape(x.onnx, out_type=tf.int64)
    start, end = attrs.get("start", 0), attrs.get("end")
    return dims[start:end]


@handles("Reshape")
def reshape(node, inputs, attrs):
    x, target = inputs
    if attrs.get("allowzero", 0):
        raise refuse(node, "allowzero=1")
    data = x.onnx
    if target.const is not None:
        planned = _planned_shape(target.int_list(), data.shape.as_list() if data.shape.rank is not None else None)
        if planned is not None:
            return tf.reshape(data, planned if all(isinstance(d, int) for d in planned) else
                              tf.stack([d if isinstance(d, int) else tf.shape(data, out_type=tf.int64)[d.index]
                                        for d in planned]))
    target = tf.cast(target.onnx, tf.int64)
    # ONNX: 0 copies the input's dim. TF also cannot infer -1 for an empty tensor ([0, 320] -> [0, -1] fails), so
    # -1 is computed here from the other dims, and as the input's own trailing size when those multiply to zero.
    in_dims = tf.shape(data, out_type=tf.int64)
    rank_in = tf.size(in_dims, out_type=tf.int64)
    index = tf.range(tf.size(target, out_type=tf.int64))
    copied = tf.gather(in_dims, tf.minimum(index, rank_in - 1))
    target = tf.where(tf.equal(target, 0), copied, target)
    known = tf.reduce_prod(tf.where(tf.equal(target, -1), tf.ones_like(target), target))
    size = tf.reduce_prod(in_dims)
    inferred = tf.where(known > 0, floor_divide(size, tf.maximum(known, 1)), _trailing_size(in_dims, target))
    return tf.reshape(data, tf.where(tf.equal(target, -1), inferred, target))


class _Copied:
    """A target dim copied from the input's dim `index` (ONNX's 0) and unknown when translating."""

    def __init__(self, index):
        self.index = index


def _planned_shape(target, in_shape):
    """The reshape target of a constant ONNX target with 0s and -1 resolved when translating: ints, and _Copied for
    a 0 whose input dim is unknown (a detection count). A -1 is left to TF when the other dims are known and
    nonzero; beside a copied dim that may be 0 at run time (TF cannot infer -1 then) it is the input size over the
    other dims, in which each copied dim cancels against itself, so it is known whenever the input's other dims
    are. 1-3 ops instead of the general path's ~20. None: not known when translating."""
    if in_shape is None or target.count(-1) > 1 or any(d < -1 for d in target):
        return None
    copies = {i for i, d in enumerate(target) if d == 0}
    if any(i >= len(in_shape) for i in copies):
        return None
    planned = [(in_shape[i] if in_shape[i] is not None else _Copied(i)) if i in copies else d
               for i, d in enumerate(target)]
    if -1 in target:
        others = [d for d in planned if d != -1]
        if all(isinstance(d, int) and d > 0 for d in others):
            return planned  # TF infers the -1 itself, empty input included, when the other dims are nonzero
        rest = [d for i, d in enumerate(in_shape) if i not in copies]
        given = [d for i, d in enumerate(target) if i not in copies and d != -1]
        if None in rest or 0 in given:
            return None
        size, other = int(np.prod(rest, dtype=np.int64)), int(np.prod(given, dtype=np.int64))
        if size % other:
            return None
        planned[target.index(-1)] = size // other
    return planned


def _trailing_size(in_dims, target):
    """For an empty input: the -1 dim gets the product of the input dims past the target's leading ones."""
    lead = tf.size(target, out_type=tf.int64) - 1
    return tf.reduce_prod(in_dims[tf.minimum(lead, tf.size(in_dims, out_type=tf.int64)):])


@handles("Flatten")
def flatten(node, inputs, attrs):
    (x,) = inputs
    axis = attrs.get("axis", 1)
    dims = tf.shape(x.onnx, out_type=tf.int64)
    axis = axis + x.rank if axis < 0 else axis
    return tf.reshape(x.onnx, tf.stack([tf.reduce_prod(dims[:axis]), tf.reduce_prod(dims[axis:])]))


@handles("Unsqueeze")
def unsqueeze(node, inputs, attrs):
    x, axes = inputs[0], axes_argument(inputs, attrs)
    y = x.onnx
    for axis in sorted(_axes(axes, x, len(axes))):
        y = tf.expand_dims(y, axis)
    return y


@handles("Squeeze")
def squeeze(node, inputs, attrs):
    x, axes = inputs[0], axes_argument(inputs, attrs)
    if axes is None:
        return tf.squeeze(x.onnx)
    return tf.squeeze(x.onnx, _axes(axes, x))


@handles("Expand")
def expand(node, inputs, attrs):
    x, target = inputs
    # ONNX Expand broadcasts both ways (a 1 in the target keeps the input's dim): broadcast the two shapes first.
    shape = tf.broadcast_dynamic_shape(tf.shape(x.onnx, out_type=tf.int64), tf.cast(target.onnx, tf.int64))
    return tf.broadcast_to(x.onnx, shape)


@handles("Tile")
def tile(node, inputs, attrs):
    x, repeats = inputs
    return tf.tile(x.onnx, tf.cast(repeats.onnx, tf.int64))


@handles("Concat")
def concat(node, inputs, attrs):
    axis = _axes([attrs["axis"]], inputs[0])[0]
    return tf.concat([v.onnx for v in inputs], axis)


@handles("Split")
def split(node, inputs, attrs):
    """Sizes are the `split` attribute before opset 13 and an input since; without them, equal parts."""
    x, sizes = (inputs + [None])[:2]
    axis = _axes([attrs.get("axis", 0)], x)[0]
    sizes = attrs.get("split") if sizes is None else tf.cast(sizes.onnx, tf.int32)  # TFLite's SplitV: int32 sizes
    if sizes is None:
        return tf.split(x.onnx, len(node.output), axis=axis)
    return tf.split(x.onnx, sizes, axis=axis, num=len(node.output))


@handles("Slice")
def slice_(node, inputs, attrs):
    x, starts, ends, axes, steps = (inputs + [None] * 5)[:5]
    rank = x.rank
    if axes is not None:
        axes = _axes(axes.int_list(), x)
    elif starts.onnx.shape[0] is None:
        raise NotKnown(starts, "length")  # without axes, the length of starts says which axes are sliced
    else:
        axes = list(range(starts.onnx.shape[0]))
    zero, one = tf.constant(0, tf.int64), tf.constant(1, tf.int64)
    begin, end, stride = [zero] * rank, [zero] * rank, [one] * rank
    untouched = sum(1 << a for a in range(rank) if a not in axes)
    begin_mask = end_mask = untouched
    for i, axis in enumerate(axes):
        stride[axis] = tf.cast(steps.onnx[i], tf.int64) if steps is not None else one
        direction = 1 if steps is None else _sign(steps, i)
        if _runs_off(starts, i, -direction):
            begin_mask |= 1 << axis
        else:
            begin[axis] = _within(x, axis, tf.cast(starts.onnx[i], tf.int64), direction)
        if _runs_off(ends, i, direction):
            end_mask |= 1 << axis
        else:
            end[axis] = _within(x, axis, tf.cast(ends.onnx[i], tf.int64), direction)
    return tf.strided_slice(x.onnx, tf.stack(begin), tf.stack(end), tf.stack(stride),
                            begin_mask=begin_mask, end_mask=end_mask)


_BEYOND_ANY_DIM = 2**31 - 1


def _within(x, axis, bound, direction):
    """A bound of a forward slice, for TFLite at most the dim: its converter makes a constant-bound StridedSlice a
    Slice of size end - begin, which fails at run time where the dim is shorter ("Invalid begin and size"), as when
    the RPN keeps fewer boxes than its top-k."""
    if not for_tflite() or direction != 1:
        return bound
    return tf.minimum(bound, tf.shape(x.onnx, out_type=tf.int64)[axis])


def _sign(steps, i):
    """The sign of a constant step, 0 when only the run knows it."""
    return 0 if steps.const is None else int(np.sign(steps.const.reshape(-1)[i]))


def _runs_off(bounds, i, direction):
    """Whether constant bound i lies beyond any dim in `direction` (exporters write +-INT64_MAX for "to the end"):
    the slice then runs to that end, which a mask bit says. TFLite's converter truncates int64 bounds to int32
    (INT64_MAX becomes -1)."""
    return (direction != 0 and bounds.const is not None
            and int(bounds.const.reshape(-1)[i]) * direction >= _BEYOND_ANY_DIM)


@handles("Transpose")
def transpose(node, inputs, attrs):
    (x,) = inputs
    perm = attrs["perm"] if "perm" in attrs else list(reversed(range(x.rank)))
    if x.held_nhwc and perm == [0, 2, 3, 1]:
        return x.nhwc  # already what was asked for: no transpose at all
    return tf.transpose(x.onnx, perm)


# Constant's value attributes, and the dtype ONNX gives the scalar and list forms.
_CONSTANT_FORMS = {"value": None, "value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
                   "value_ints": np.int64}


@handles("Constant")
def constant(node, inputs, attrs):
    """A value known at translation time, from whichever of Constant's attributes holds it. No handled op takes
    strings, and a sparse value would have to be densified, so those forms are refused."""
    if len(attrs) != 1:
        raise refuse(node, f"attributes {sorted(attrs)}; a Constant has exactly one value attribute")
    ((form, value),) = attrs.items()
    if form not in _CONSTANT_FORMS or np.asarray(value).dtype.kind in "OSU":
        raise refuse(node, f"a {form} constant; handled: {', '.join(_CONSTANT_FORMS)} (numeric)")
    return Value.constant(np.asarray(value, _CONSTANT_FORMS[form]))


@handles("ConstantOfShape")
def constant_of_shape(node, inputs, attrs):
    (dims,) = inputs
    value = np.asarray(attrs.get("value", np.zeros(1, np.float32))).reshape(-1)
    return tf.fill(tf.cast(dims.onnx, tf.int64), tf.constant(value[0]))


@handles("Range")
def range_(node, inputs, attrs):
    start, limit, delta = (v.onnx for v in inputs)
    return tf.range(start, limit, delta)
