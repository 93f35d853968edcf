"""OUT/saved_model: the pb's model for TF Serving and the like, with two signatures.

`serving_default` takes an image as it comes, `input_tensor` uint8 [1, H, W, 3] RGB of any size, and does inside
the graph what detectron2's DefaultPredictor and detector_postprocess do around the model: the config's test resize
(serving/resize.py), the model, boxes back to the image and masks pasted at its size (serving/postprocess.py). Its
outputs follow the TF Object Detection API's names and layouts (core.contract); docs/outputs.md says where
they differ. `tensorpack` is the pb's own interface (core.contract).

The weights are variables, not the pb's constants: TensorFlow optimises a graph on its first run, and with the
weights inside the graph it copies them with every pass (the DC5 pb's first run took 60 s where the next took 1.4 s).
"""

import json
import os
import shutil
import tempfile

import tensorflow as tf

from core import contract
from tf_import.serving.postprocess import paste_masks, scale_boxes
from tf_import.serving.resize import output_size, resize_bilinear

_LIFTED_BYTES = 1024  # a constant larger than this becomes a variable: the weights, not shapes or axes
# With class names, the SavedModel's assets hold them as the TF Object Detection API's label map (item id: the
# detection_classes value), tracked as the module's `label_map` asset.
LABEL_MAP = "label_map.pbtxt"


def write(graph_def, info, path):
    """Saves the SavedModel of the frozen `graph_def` (tf_import.freeze) and its model info at `path`, replacing a
    directory there only once the new one is complete."""
    module = _Served(graph_def, info)
    partial = path + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    with tempfile.TemporaryDirectory() as assets:
        if info.class_names:
            labels = os.path.join(assets, LABEL_MAP)
            with open(labels, "w", encoding="utf-8") as f:
                f.write(label_map(info.class_names))
            module.label_map = tf.saved_model.Asset(labels)
        # Without custom gradients: save would trace a gradient for each function it finds, and the exact RoIAlign's
        # loop bodies, imported with the pb, made it fail ("duplicate function ... definitions differ", R50-DC5 Mask).
        tf.saved_model.save(module, partial, signatures={contract.SERVING_SIGNATURE: module.serve,
                                                        contract.TENSORPACK_SIGNATURE: module.tensorpack},
                            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
    shutil.rmtree(path, ignore_errors=True)
    os.replace(partial, path)


def label_map(names):
    """The text of a label map of `names` (0-based classes): `item { id: <class + LABEL_BASE> name: "..." }`."""
    return "".join(f"item {{\n  id: {i + contract.LABEL_BASE}\n  name: {json.dumps(name, ensure_ascii=False)}\n}}\n"
                   for i, name in enumerate(names))


class _Served(tf.Module):
    def __init__(self, graph_def, info):
        super().__init__()
        self._graph_def, weights = _lifted(graph_def)
        self._weight_names = list(weights)
        self.weight_variables = [tf.Variable(value, trainable=False, name=f"w{i}")
                                 for i, value in enumerate(weights.values())]
        self._mask = info.architecture.mask
        self._outputs = contract.pb_outputs(info.outputs)
        self._resize = info.resize
        self._bgr = info.input.format == "BGR"

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])
    def _model(self, image):
        """{pb output: tensor} of the pb's graph on one float32 [H, W, 3] image in the model's INPUT.FORMAT; one
        function, which both signatures call."""
        feeds = {f"{contract.INPUT}:0": image}
        feeds.update({f"{name}:0": tf.convert_to_tensor(variable)
                      for name, variable in zip(self._weight_names, self.weight_variables)})
        tensors = tf.compat.v1.import_graph_def(self._graph_def, input_map=feeds, name="model",
                                                return_elements=[contract.pb_tensor(o) for o in self._outputs])
        return dict(zip(self._outputs, tensors))

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32, name=contract.INPUT)])
    def tensorpack(self, image):
        return self._model(image)

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name=contract.SERVING_INPUT)])
    def serve(self, input_tensor):
        # In the model's INPUT.FORMAT, as DefaultPredictor hands images to the model.
        image = input_tensor[0, :, :, ::-1] if self._bgr else input_tensor[0]
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        resized_hw = (height, width)
        if self._resize.min_size_test:
            resized_hw = output_size(height, width, self._resize.min_size_test, self._resize.max_size_test)
            image = resize_bilinear(image, *resized_hw)
        out = self._model(tf.cast(image, tf.float32))
        boxes, keep = scale_boxes(out["boxes"], resized_hw, (height, width))
        boxes = tf.boolean_mask(boxes, keep)
        size = tf.cast(tf.stack([height, width, height, width]), tf.float32)
        values = [tf.cast(tf.shape(boxes)[:1], tf.float32),
                  (tf.gather(boxes, [1, 0, 3, 2], axis=1) / size)[None],
                  tf.boolean_mask(out["scores"], keep)[None],
                  tf.cast(tf.boolean_mask(out["labels"], keep), tf.float32)[None]]
        if self._mask:
            values.append(paste_masks(tf.boolean_mask(out["masks"], keep), boxes, height, width)[None])
        return dict(zip(contract.serving_outputs(self._mask), values))


def _lifted(graph_def):
    """(a copy of graph_def whose large Consts are Placeholders of the same name, {name: ndarray} of their values)."""
    lifted, weights = tf.compat.v1.GraphDef(), {}
    lifted.CopyFrom(graph_def)
    for node in lifted.node:
        if node.op != "Const" or len(node.attr["value"].tensor.tensor_content) <= _LIFTED_BYTES:
            continue
        weights[node.name] = tf.make_ndarray(node.attr["value"].tensor)
        dtype = node.attr["dtype"].type
        node.op = "Placeholder"
        node.ClearField("attr")
        node.attr["dtype"].type = dtype
        node.attr["shape"].shape.CopyFrom(tf.TensorShape(weights[node.name].shape).as_proto())
    return lifted, weights
