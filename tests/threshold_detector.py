"""A detector of sorts as an ONNX graph with d2tf's interface, small enough to translate in seconds and whose outputs
are worked out by hand: every value of the input image above 0.5, in the order of its [H, W, 3] values, is a
detection scored by the value and of class int(value)."""

from onnx import TensorProto, helper


def detector_nodes(box="point"):
    """The graph's nodes. `box`: "point", the box [v, v, v, v] (empty); "corner", [0, 0, v, 2v] (x1, y1, x2, y2)."""
    return [helper.make_node("Constant", [], ["minus_one"],
                             value=helper.make_tensor("m", TensorProto.INT64, [1], [-1])),
            helper.make_node("Reshape", ["image", "minus_one"], ["flat"]),
            helper.make_node("Constant", [], ["half"], value=helper.make_tensor("h", TensorProto.FLOAT, [], [0.5])),
            helper.make_node("Greater", ["flat", "half"], ["above"]),
            helper.make_node("NonZero", ["above"], ["where"]),
            helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("z", TensorProto.INT64, [1], [0])),
            helper.make_node("Squeeze", ["where", "zero"], ["kept"]),
            helper.make_node("Gather", ["flat", "kept"], ["scores"]),
            helper.make_node("Constant", [], ["one"], value=helper.make_tensor("o", TensorProto.INT64, [1], [1])),
            helper.make_node("Unsqueeze", ["scores", "one"], ["column"]),
            *_boxes[box](),
            helper.make_node("Cast", ["scores"], ["classes"], to=TensorProto.INT64)]


_boxes = {
    "point": lambda: [helper.make_node("Concat", ["column"] * 4, ["boxes"], axis=1)],
    "corner": lambda: [helper.make_node("Sub", ["column", "column"], ["origin"]),
                       helper.make_node("Add", ["column", "column"], ["double"]),
                       helper.make_node("Concat", ["origin", "origin", "column", "double"], ["boxes"], axis=1)],
}


def graph_model(nodes, initializers=()):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["h", "w", 3])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("boxes", "scores", "classes")],
        initializer=list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
