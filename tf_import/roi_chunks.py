"""TFLite form of the per-box part of a two-stage model: each RoiAlign and the nodes after it that compute box by
box (C4's res5 with its box or mask head, FPN's pooling of one level) run over the boxes a chunk at a time, in a
while loop whose results are concatenated.

Why: TFLite plans the memory of the tensors whose shapes it knows before a run and reuses it; a tensor whose shape
depends on the data (everything after NMS depends on the box count) it allocates on its own and keeps until the next
run. A C4 model run on the zoo's 1000 proposals at once holds res5's activations and RoIAlign's gathered samples
for every proposal: over 20 GB (R50-C4 Faster at 800x1216). In a loop body each such tensor is one chunk's size and
the next chunk reuses it, so the memory is bounded by CHUNK_BYTES whatever the proposal count.

A region is the RoiAlign (its boxes and batch indices are chunked, its feature map is read whole) and every node
that reads only the region's values and constants and keeps its rows apart (`_keeps_rows`): the row of box i of
its output depends on row i of its inputs only. Its outputs are the values read outside it. The pb keeps the plain
graph: TensorFlow frees each tensor after its last use."""

import dataclasses

import numpy as np
import onnx
from onnx import numpy_helper

from tf_import.subgraphs import enclosing_reads

# The body's tensors of one chunk, about: rows per chunk = CHUNK_BYTES // bytes per row (_rows_per_chunk).
CHUNK_BYTES = 256 << 20
# TFLite's RoIAlign gathers its bilinear samples (tf_import/ops/roi_align.py): four reads, their blends and the
# pooled sums hold about this many tensors of the sample grid (twice the output size per side, in tensorpack mode).
_GATHER_TENSORS = 12

# The handled ops that keep rows apart (with _keeps_rows' conditions on their other inputs and attributes).
_ELEMENTWISE = {"Relu", "Sigmoid", "Cast", "Identity", "Exp", "Sqrt", "Clip", "Add", "Sub", "Mul", "Div"}
_PER_IMAGE = {"Conv", "ConvTranspose", "BatchNormalization", "MaxPool"}  # the batch axis is the box axis
_REDUCE = {"ReduceMean", "ReduceMax", "ReduceSum"}


@dataclasses.dataclass
class Region:
    entry: onnx.NodeProto  # the RoiAlign
    members: list  # the region's nodes in graph order, the entry first
    body: onnx.GraphProto  # the members and the Constant nodes they read: what one chunk runs
    outputs: list  # (name, numpy dtype, static shape after the box axis) of each value read outside the region
    rows: int  # boxes per chunk

    @property
    def reads(self):
        """The names the body reads from the graph around it (the entry's boxes and batch indices are chunked)."""
        return enclosing_reads(self.body)


def regions(model):
    """The Regions of `model`'s top graph, one per RoiAlign whose outputs have static shapes after the box axis
    (ONNX shape inference); a RoiAlign without them is left unchunked."""
    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type for v in [*inferred.graph.value_info, *inferred.graph.output]}
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    constant_nodes = {}
    for node in graph.node:
        if node.op_type == "Constant":
            constant_nodes[node.output[0]] = node
            constants[node.output[0]] = numpy_helper.to_array(onnx.helper.get_attribute_value(node.attribute[0]))
    outside = _read_by(graph)
    found = []
    for index, entry in enumerate(graph.node):
        if entry.op_type != "RoiAlign":
            continue
        members, values = [entry], set(entry.output)
        for node in graph.node[index + 1:]:
            if _keeps_rows(node, values, constants, types):
                members.append(node)
                values.update(node.output)
        read = {name for node in members for name in node.input}
        outputs = [name for name in sorted(values) if outside.get(name, set()) - {n.output[0] for n in members}]
        shapes = [_trailing(types.get(name)) for name in outputs]
        if any(shape is None for shape in shapes):
            continue
        dtypes = [onnx.helper.tensor_dtype_to_np_dtype(types[name].elem_type) for name in outputs]
        feeding = [constant_nodes[name] for name in sorted(read & constant_nodes.keys())]
        body = onnx.helper.make_graph(feeding + members, f"chunks of {entry.name}", [], [])
        found.append(Region(entry, members, body, list(zip(outputs, dtypes, shapes)),
                            _rows_per_chunk(entry, values, types)))
    return found


def _read_by(graph):
    """{value name: the nodes of the top graph that read it, by their first output's name}; a node with a body (a
    Loop) reads what its body reads of the graphs around it; the graph's outputs are read by None."""
    readers = {}
    for node in graph.node:
        names = set(node.input)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                names |= enclosing_reads(attr.g)
        for name in names - {""}:
            readers.setdefault(name, set()).add(node.output[0])
    for out in graph.output:
        readers.setdefault(out.name, set()).add(None)
    return readers


def _keeps_rows(node, region, constants, types):
    """Whether `node` belongs to the region whose values are `region`: it reads at least one of them, everything
    else it reads is a constant that does not vary along the box axis, and its output row i depends on its inputs'
    row i only."""
    inputs = [name for name in node.input if name]
    rows = [name for name in inputs if name in region]
    if not rows or len(node.output) != 1:
        return False
    others = [name for name in inputs if name not in region]
    if any(name not in constants for name in others):
        return False
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    rank = _rank(types.get(node.output[0]))
    op = node.op_type
    if op in _ELEMENTWISE:
        # a constant operand broadcast along the box axis must not have one of its own there
        return rank is not None and all(constants[name].ndim < rank or constants[name].shape[0] == 1
                                        for name in others)
    if op in _PER_IMAGE:
        return node.input[0] in region and all(name not in region for name in node.input[1:])
    if op in _REDUCE:
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = constants[node.input[1]].tolist()
        in_rank = _rank(types.get(node.input[0]))
        return bool(axes) and in_rank is not None and all(a % in_rank != 0 for a in axes)
    if op == "Gemm":
        bias = node.input[2] if len(node.input) > 2 else ""
        return (node.input[0] in region and not attrs.get("transA", 0) and node.input[1] not in region
                and (not bias or constants[bias].ndim < 2 or constants[bias].shape[0] == 1))
    if op == "MatMul":
        return node.input[0] in region and node.input[1] in constants and constants[node.input[1]].ndim == 2
    if op == "Flatten":
        return attrs.get("axis", 1) >= 1
    return False


def _rank(tensor_type):
    return len(tensor_type.shape.dim) if tensor_type is not None and tensor_type.HasField("shape") else None


def _trailing(tensor_type):
    """The static dims after the box axis, or None if any is unknown."""
    if _rank(tensor_type) is None:
        return None
    dims = tensor_type.shape.dim[1:]
    return None if any(not d.HasField("dim_value") for d in dims) else tuple(d.dim_value for d in dims)


def _rows_per_chunk(entry, values, types):
    """Boxes per chunk: CHUNK_BYTES over what one box costs in the region's values, and in RoIAlign's gathers."""
    per_row = sum(4 * int(np.prod(_trailing(types.get(name)) or (0,))) for name in values)
    channels, height, width = _trailing(types.get(entry.output[0])) or (0, 0, 0)
    per_row += _GATHER_TENSORS * 4 * channels * (2 * height) * (2 * width)
    return max(1, CHUNK_BYTES // max(per_row, 1))
