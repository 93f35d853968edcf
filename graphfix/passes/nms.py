"""nms: lift NonMaxSuppression out of the empty-input `If` guards the trace leaves.

torchvision's batched_nms (the RPN's NMS) starts with `if boxes.numel() == 0: return empty`, which traces to
`If(cond, then=<empty int64 constant>, else=<offset boxes per class, NonMaxSuppression, ...>)`. TensorFlow (and
tensorpack's graph) has no need for the branch: the else branch is already correct on zero boxes (its ReduceMax of
an empty tensor gives -inf, which only ever multiplies an empty index tensor, and NonMaxSuppression of zero boxes
selects nothing). So the If is replaced by its inlined else branch.
"""

from graphfix import graph as G


def run(model):
    nodes = []
    for node in model.graph.node:
        if _is_empty_guard(node):
            nodes.extend(G.inline_branch(node, G.branch(node, "else_branch")))
        else:
            nodes.append(node)
    G.replace_nodes(model.graph, nodes)
    return model


def _is_empty_guard(node):
    if node.op_type != "If":
        return False
    then, other = G.branch(node, "then_branch"), G.branch(node, "else_branch")
    empty_then = len(then.node) == 1 and then.node[0].op_type == "Constant" and \
        G.constant_node_value(then.node[0]).size == 0
    return empty_then and any(n.op_type == "NonMaxSuppression" for n in other.node)
