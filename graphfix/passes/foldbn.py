"""foldbn (opt-in): fold each BatchNormalization that directly follows a Conv into that Conv's weight and bias.

detectron2's FrozenBN exports as an inference-mode BatchNormalization after every backbone conv; folding removes
53 (R50) to 104 (R101) ops from the pb and their per-pixel work. Not in the default pipeline: the folded weights
are no longer the checkpoint's tensors. The originals stay in the graph, unread (onnxruntime and TensorFlow make
nothing of them), so tf_import still derives the npz from the fixed graph alone. Only a Conv whose output feeds
nothing but that BN is folded; the new initializers are named `<conv weight>` + core.contract.FOLDED_SUFFIXES.
"""

import numpy as np
from onnx import numpy_helper

from core.contract import FOLDED_SUFFIXES
from graphfix import graph as G


def run(model):
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    producers, consumers = G.producers(graph), G.consumers(graph)
    outputs = {o.name for o in graph.output}
    folded = []
    for bn in [n for n in graph.node if n.op_type == "BatchNormalization"]:
        conv = producers.get(bn.input[0])
        if not _foldable(bn, conv, weights, consumers, outputs):
            continue
        w, b = _folded(conv, bn, weights)
        names = [conv.input[1] + suffix for suffix in FOLDED_SUFFIXES]
        graph.initializer.extend([numpy_helper.from_array(w, names[0]), numpy_helper.from_array(b, names[1])])
        conv.input[:] = [conv.input[0], *names]
        conv.output[0] = bn.output[0]
        folded.append(bn)
    for bn in folded:
        graph.node.remove(bn)
    return model


def _foldable(bn, conv, weights, consumers, outputs):
    return (conv is not None and conv.op_type == "Conv"
            and len(bn.output) == 1 and all(name in weights for name in list(bn.input[1:]) + list(conv.input[1:]))
            and len(consumers[conv.output[0]]) == 1 and conv.output[0] not in outputs)


def _folded(conv, bn, weights):
    """W' = W * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps), per output channel (float64)."""
    value = {name: numpy_helper.to_array(weights[name]).astype(np.float64) for name in [*bn.input[1:], *conv.input[1:]]}
    gamma, beta, mean, var = (value[name] for name in bn.input[1:5])
    eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
    scale = gamma / np.sqrt(var + eps)
    w = value[conv.input[1]]
    b = value[conv.input[2]] if len(conv.input) > 2 and conv.input[2] else np.zeros(w.shape[0])
    return (w * scale[:, None, None, None]).astype(np.float32), ((b - mean) * scale + beta).astype(np.float32)

