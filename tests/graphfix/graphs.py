"""What the pass tests share: the opset of their hand-built graphs, running a graph in onnxruntime, and an If
guard (the nms pass leaves one alone, the shapes pass decides one)."""

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 16)]


def run(model, **feeds):
    sess = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def copy(model):
    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    return clone


def op_types(model):
    return [n.op_type for n in model.graph.node]


def if_model(cond_is_constant):
    """y = If(cond, x + 1, x * 2); cond constant True, or read from input `c`."""
    then = helper.make_graph([helper.make_node("Add", ["x", "one"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    nodes = [
        helper.make_node("Constant", [], ["one"], value=numpy_helper.from_array(np.float32(1))),
        helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.float32(2))),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])]
    if cond_is_constant:
        nodes.append(helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(True))))
    else:
        inputs.append(helper.make_tensor_value_info("c", TensorProto.BOOL, []))
    nodes.append(helper.make_node("If", ["c"], ["y"], name="guard", then_branch=then, else_branch=other))
    graph = helper.make_graph(nodes, "if", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])])
    return helper.make_model(graph, opset_imports=OPSET)
