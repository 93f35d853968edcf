"""`python -m runners.pb_runner model.pb images.npz outputs.npz`: the frozen pb on the images of an npz, loaded the
way a tensorpack predict.py user loads it (tf.compat.v1 GraphDef, import, Session). Outputs are the pb's own:
output/boxes, output/scores, output/labels (1-based), output/masks."""

import os

from core import D2TFError, cli, contract
from runners import lowered, on_npz


def load_pb(path, lower_from=None):
    """(tf.Graph, {output: tensor name}) of a frozen pb; with `lower_from` (the model info's score threshold), with
    that threshold checked and lowered (runners/lowered.py)."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    try:
        with open(path, "rb") as f:
            graph_def.ParseFromString(f.read())
    except Exception as e:  # OSError, or protobuf's DecodeError
        raise D2TFError(f"cannot read the frozen graph {path}: {e}") from None
    if lower_from is not None:
        lowered.graph_def(graph_def, lower_from, os.path.basename(path))
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    names = {op.name for op in graph.get_operations()}
    outputs = contract.pb_outputs_among(names)
    return graph, {o: contract.pb_tensor(o) for o in outputs}


# Grappler's passes TensorFlow runs before a graph's first Session.run, other than constant folding and the remapper
# (which fuses the convolutions' bias and activation): each pass copies every constant of a frozen pb, its weights.
_SLOW_TO_START = ("layout_optimizer", "arithmetic_optimization", "dependency_optimization", "loop_optimization",
                  "function_optimization", "shape_optimization", "common_subgraph_elimination",
                  "implementation_selector")


def fast_start_config():
    """A tf.compat.v1.ConfigProto under which the pb's first Session.run costs about 1.6x a steady one instead of
    2.6x (R50-FPN Mask at 800x1216: 7.0 s against 11.1 s, steady 4.3 s either way): grappler runs one round of
    constant folding and the remapper only. docs/benchmarks.md shows it for users; `make bench` measures it."""
    import tensorflow as tf
    from tensorflow.core.protobuf import rewriter_config_pb2

    config = tf.compat.v1.ConfigProto()
    rewrites = config.graph_options.rewrite_options
    rewrites.meta_optimizer_iterations = rewriter_config_pb2.RewriterConfig.ONE
    for name in _SLOW_TO_START:
        setattr(rewrites, name, rewriter_config_pb2.RewriterConfig.OFF)
    rewrites.memory_optimization = rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
    rewrites.disable_model_pruning = True
    return config


def session(path, config=None, lower_from=None):
    """(tf.compat.v1.Session on the pb's graph, {output: tensor name}); `config` is a tf.compat.v1.ConfigProto,
    `lower_from` as load_pb's."""
    import tensorflow as tf

    graph, tensors = load_pb(path, lower_from)
    return tf.compat.v1.Session(graph=graph, config=config), tensors


def run(sess, tensors, image):
    """{output: ndarray} of one HxWx3 float32 BGR image."""
    return dict(zip(tensors, sess.run(list(tensors.values()), {f"{contract.INPUT}:0": image})))


def predict(path, images, config=None, lower_from=None):
    """{image key: {output: ndarray}} for {image key: HxWx3 float32 BGR image}."""
    sess, tensors = session(path, config, lower_from)
    with sess:
        return {key: run(sess, tensors, image) for key, image in images.items()}


def main(argv=None):
    parser = cli.ArgumentParser(prog="python -m runners.pb_runner", description=__doc__.splitlines()[0])
    parser.add_argument("pb")
    parser.add_argument("images", help="npz of HxWx3 float32 BGR images")
    parser.add_argument("out", help="npz to write, entries <image key>/<output>")
    parser.add_argument("--fast-start", action="store_true", help="run under fast_start_config() (a shorter first "
                        "run: one round of constant folding and the remapper)")
    parser.add_argument(lowered.ARGUMENT, type=float, metavar="FROM", dest="lower_from", help=lowered.ARGUMENT_HELP)
    args = parser.parse_args(argv)
    config = fast_start_config() if args.fast_start else None
    on_npz(args.images, args.out, "the pb (TensorFlow)",
           lambda images: predict(args.pb, images, config, args.lower_from))


if __name__ == "__main__":
    cli.run(main)
