"""The tensorpack npz checkpoint, from the weights the graph holds (its flags: tf_import/tensorpack_config.py).

Every ONNX initializer is a detectron2 checkpoint tensor under its own name (export keeps FrozenBN unfolded), so
each is renamed and laid out as tensorpack's FasterRCNN example creates its variables
(docs/tensorpack.md section 1). Each is consumed exactly once; a name no rule claims, or a tensorpack variable
nothing fills, is an error naming it. Needs numpy and onnx only.
"""

import io
import re
import zipfile

import numpy as np
from onnx import numpy_helper

from core import D2TFError
from core.contract import is_checkpoint_tensor
from tf_import.tensorpack_config import RESNET_BLOCKS

_CONV_HEAD = re.compile(r"roi_heads\.box_head\.(\d\.)?conv\d\.")  # an FPN box head with convs (4conv1fc)
_FIRST_CONV = "conv0/W"  # (kh, kw, input channels, output channels), the image's channels in tensorpack's BGR order
_BN = {"weight": "gamma", "bias": "beta", "running_mean": "mean/EMA", "running_var": "variance/EMA"}


def _resnet_rules(prefix):
    """(regex on the detectron2 name, tensorpack name template) for a ResNet under `prefix` (C4 res5 separately)."""
    return [
        (prefix + r"stem\.conv1\.", "conv0"),
        (prefix + r"res(?P<g>[2-5])\.(?P<b>\d+)\.shortcut\.", "group{g}/block{b}/convshortcut"),
        (prefix + r"res(?P<g>[2-5])\.(?P<b>\d+)\.conv(?P<k>[1-3])\.", "group{g}/block{b}/conv{k}"),
    ]


def _rules(arch, conv_head):
    """`conv_head`: FPN's box head is tensorpack's fastrcnn_4conv1fc_head (convs conv0-3, then fc), else 2fc."""
    backbone = "backbone.bottom_up." if arch.backbone == "FPN" else "backbone."
    rules = _resnet_rules(backbone) + [
        (r"roi_heads\.res(?P<g>5)\.(?P<b>\d+)\.shortcut\.", "group{g}/block{b}/convshortcut"),
        (r"roi_heads\.res(?P<g>5)\.(?P<b>\d+)\.conv(?P<k>[1-3])\.", "group{g}/block{b}/conv{k}"),
        (r"backbone\.fpn_lateral(?P<l>[2-5])\.", "fpn/lateral_1x1_c{l}"),
        (r"backbone\.fpn_output(?P<l>[2-5])\.", "fpn/posthoc_3x3_p{l}"),
        (r"proposal_generator\.rpn_head\.conv\.", "rpn/conv0"),
        (r"proposal_generator\.rpn_head\.objectness_logits\.", "rpn/class"),
        (r"proposal_generator\.rpn_head\.anchor_deltas\.", "rpn/box"),
        (r"roi_heads\.mask_head\.mask_fcn(?P<i>\d+)\.", "maskrcnn/fcn{i-1}"),
        (r"roi_heads\.mask_head\.deconv\.", "maskrcnn/deconv"),
        (r"roi_heads\.mask_head\.predictor\.", "maskrcnn/conv"),
    ]
    if arch.cascade:
        rules += [
            (r"roi_heads\.box_head\.(?P<s>\d)\.conv(?P<i>\d)\.", "cascade_rcnn_stage{s+1}/head/conv{i-1}"),
            (r"roi_heads\.box_head\.(?P<s>\d)\.fc(?P<i>\d)\.",
             "cascade_rcnn_stage{s+1}/head/fc" + ("" if conv_head else "{i+5}")),
            (r"roi_heads\.box_predictor\.(?P<s>\d)\.cls_score\.", "cascade_rcnn_stage{s+1}/outputs/class"),
            (r"roi_heads\.box_predictor\.(?P<s>\d)\.bbox_pred\.", "cascade_rcnn_stage{s+1}/outputs/box"),
        ]
    else:
        outputs = "fastrcnn/outputs" if arch.backbone == "FPN" else "fastrcnn"
        rules += [
            (r"roi_heads\.box_head\.conv(?P<i>\d)\.", "fastrcnn/conv{i-1}"),
            (r"roi_heads\.box_head\.fc(?P<i>\d)\.", "fastrcnn/fc" + ("" if conv_head else "{i+5}")),
            (r"roi_heads\.box_predictor\.cls_score\.", outputs + "/class"),
            (r"roi_heads\.box_predictor\.bbox_pred\.", outputs + "/box"),
        ]
    return [(re.compile(pattern), template) for pattern, template in rules]


def _layer_name(template, match):
    """Fills `{g}`, `{i-1}`, `{s+1}`, ... from the regex groups; detectron2's res{g} is tensorpack's group{g-2}."""
    def fill(m):
        key, offset = m.group(1), int(m.group(2) or 0)
        value = int(match.group(key))
        return str(value - 2 + offset if key == "g" else value + offset)

    return re.sub(r"\{(\w)([+-]\d+)?\}", fill, template)


def tensorpack_weights(initializers, arch, input_format="BGR"):
    """{tensorpack variable name: float32 array} from {detectron2 name: array} (the graph's initializers) of a model
    whose images come in `input_format` (INPUT.FORMAT): tensorpack's come in BGR, so an RGB model's first conv takes
    its input channels in reverse order."""
    conv_head = any(_CONV_HEAD.match(name) for name in initializers)
    rules = _rules(arch, conv_head)
    out, unclaimed = {}, []
    for name in sorted(initializers):
        value = np.asarray(initializers[name])
        for pattern, template in rules:
            match = pattern.match(name)
            if match:
                layer, param = _layer_name(template, match), name[match.end():]
                break
        else:
            unclaimed.append(name)
            continue
        key, array = _convert(layer, param, value, name, class_agnostic_boxes=arch.cascade)
        if key in out:
            raise D2TFError(f"two weights map to tensorpack variable {key} (second: {name})")
        out[key] = array[:, :, ::-1].copy() if key == _FIRST_CONV and input_format == "RGB" else array
    if unclaimed:
        raise D2TFError(f"{len(unclaimed)} weight(s) with no tensorpack counterpart: {_listing(unclaimed)}")
    missing = sorted(set(_required(arch, conv_head)) - set(out))
    if missing:
        raise D2TFError(f"the graph lacks weights for {len(missing)} tensorpack variable(s): {_listing(missing)}")
    return out


def _listing(names, most=10):
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _required(arch, conv_head):
    """The kernel of every layer tensorpack's model has for `arch` (BN statistics come with their conv)."""
    blocks = RESNET_BLOCKS[arch.depth]
    layers = ["conv0", "rpn/conv0", "rpn/class", "rpn/box"]
    for group, count in enumerate(blocks):
        layers += [f"group{group}/block{b}/conv{k}" for b in range(count) for k in (1, 2, 3)]
        layers.append(f"group{group}/block0/convshortcut")
    fpn = arch.backbone == "FPN"
    if fpn:
        layers += [f"fpn/{kind}{level}" for level in range(2, 6) for kind in ("lateral_1x1_c", "posthoc_3x3_p")]
    head = [f"conv{k}" for k in range(4)] + ["fc"] if conv_head else ["fc6", "fc7"]
    if arch.cascade:
        for stage in (1, 2, 3):
            prefix = f"cascade_rcnn_stage{stage}"
            layers += [f"{prefix}/head/{layer}" for layer in head] + [f"{prefix}/outputs/class",
                                                                      f"{prefix}/outputs/box"]
    else:
        outputs = "fastrcnn/outputs" if fpn else "fastrcnn"
        layers += ([f"fastrcnn/{layer}" for layer in head] if fpn else []) + [f"{outputs}/class", f"{outputs}/box"]
    if arch.mask:
        layers += [f"maskrcnn/fcn{i}" for i in range(4 if fpn else 0)] + ["maskrcnn/deconv", "maskrcnn/conv"]
    return [f"{layer}/W" for layer in layers]


def _convert(layer, param, value, source, class_agnostic_boxes):
    if param.startswith("norm."):
        return f"{layer}/bn/{_BN[param[len('norm.'):]]}", value.astype(np.float32)
    if param not in ("weight", "bias"):
        raise D2TFError(f"unexpected parameter {source}")
    box_head = not layer.startswith("rpn/")  # the RPN's class/box have no categories
    if box_head and layer.endswith("/class"):
        value = _background_first(value)
    elif box_head and layer.endswith("/box") and not class_agnostic_boxes:  # cascade regresses 4 agnostic outputs
        value = _background_slot(value)
    if param == "bias":
        return f"{layer}/b", value.astype(np.float32)
    if value.ndim == 4:  # Conv2d (out, in, kh, kw) and ConvTranspose2d (in, out, kh, kw) both -> (kh, kw, ., .)
        return f"{layer}/W", np.ascontiguousarray(value.transpose(2, 3, 1, 0), np.float32)
    return f"{layer}/W", np.ascontiguousarray(value.T, np.float32)  # Linear (out, in) -> (in, out)


def _background_first(value):
    """detectron2's classifier puts background last (index K); tensorpack first."""
    return np.concatenate([value[-1:], value[:-1]])


def _background_slot(value):
    """Class-specific box regression: 4K outputs -> 4(K+1), the leading background slot a copy of class 0's."""
    return np.concatenate([value[:4], value])


def initializers(model):
    """The checkpoint's tensors in the graph: every initializer but the folded copies graphfix's foldbn adds."""
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer
            if is_checkpoint_tensor(init.name)}


def write_npz(path_or_file, arrays):
    """np.savez's format (stored, not deflated: deflate saved 7% of the size at about 7 s a write) with fixed
    member order and timestamps, so two runs give identical bytes."""
    with zipfile.ZipFile(path_or_file, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, buf.getvalue())


def npz_bytes(arrays):
    buf = io.BytesIO()
    write_npz(buf, arrays)
    return buf.getvalue()
