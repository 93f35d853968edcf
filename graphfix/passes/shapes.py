"""shapes: fold the shape arithmetic that does not depend on the input size; remove decidable control flow.

The trace computes many sizes at run time (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) although only the
image height/width and the number of boxes vary. With ONNX shape inference, a Shape (or a Gather of a Shape) whose
dims are all static becomes a constant; constant folding then carries that through the arithmetic, so H, W and the
box count are the only symbols left. An If whose condition became constant is replaced by the branch it takes.
Afterwards no If or Scan may remain. A Loop may: keypoint R-CNN resizes each box's heatmaps to that box's size, one
box after another (export/keypoint_inference.py), and TensorFlow runs it as a while loop.
"""

import numpy as np
import onnx

from core import D2TFError
from graphfix import graph as G
from graphfix.passes.cleanup import fold_constants

_CONTROL_FLOW = {"If", "Scan"}


def run(model):
    while fold_static_shapes(model) + fold_constant_ifs(model) + fold_constants(model):
        pass
    remaining = [f"{n.op_type} {n.name}" for n in model.graph.node if n.op_type in _CONTROL_FLOW]
    if remaining:
        raise D2TFError(f"control flow left that graphfix cannot decide: {', '.join(remaining)}")
    return model


def inferred_shapes(model):
    """{value name: tuple of dims} from ONNX shape inference, None for a symbolic dim."""
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        if info.type.tensor_type.HasField("shape"):
            dims = info.type.tensor_type.shape.dim
            shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    for init in model.graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def fold_static_shapes(model):
    """Shape nodes on static-shaped values, and Gathers picking static dims out of any Shape, become constants.
    Returns the number folded."""
    shapes = inferred_shapes(model)
    known = G.constant_values(model.graph)
    shape_of = {}  # Shape output -> the dims it holds (None where symbolic)
    folded, nodes = 0, []
    for node in model.graph.node:
        value = None
        if node.op_type == "Shape" and node.input[0] in shapes:
            attrs = {a.name: a.i for a in node.attribute}
            dims = shapes[node.input[0]]
            shape_of[node.output[0]] = dims = dims[attrs.get("start", 0):attrs.get("end", len(dims))]
            if None not in dims:
                value = np.array(dims, np.int64)
        elif node.op_type == "Gather" and node.input[0] in shape_of and node.input[1] in known:
            picked = np.take(np.array(shape_of[node.input[0]], object), known[node.input[1]].astype(np.int64))
            if None not in np.asarray(picked).reshape(-1):
                value = np.asarray(picked, np.int64)
        if value is None:
            nodes.append(node)
        else:
            nodes.append(G.make_constant(node.output[0], value, node_name=f"{node.name}/static"))
            folded += 1
    G.replace_nodes(model.graph, nodes)
    return folded


def fold_constant_ifs(model):
    """If nodes with a constant condition become the branch they take. Returns the number folded."""
    known = G.constant_values(model.graph)
    folded, nodes = 0, []
    for node in model.graph.node:
        if node.op_type == "If" and node.input[0] in known:
            taken = "then_branch" if bool(np.asarray(known[node.input[0]]).reshape(-1)[0]) else "else_branch"
            nodes.extend(G.inline_branch(node, G.branch(node, taken)))
            folded += 1
        else:
            nodes.append(node)
    G.replace_nodes(model.graph, nodes)
    return folded
