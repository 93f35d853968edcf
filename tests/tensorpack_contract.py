"""tensorpack's variables, restated from the contract (docs/tensorpack.md section 1)
independently of tf_import/tensorpack_checkpoint.py, the code under test."""

import re

import numpy as np

BN = {"weight": "gamma", "bias": "beta", "running_mean": "mean/EMA", "running_var": "variance/EMA"}


def contract_names(arch, conv_head=False):
    """Every variable tensorpack's FasterRCNN creates for `arch` (`conv_head`: FPN's box head is 4conv1fc), straight
    from the contract."""
    names = []

    def conv_bn(layer):
        names.extend([f"{layer}/W"] + [f"{layer}/bn/{p}" for p in BN.values()])

    def layer_with_bias(layer):
        names.extend([f"{layer}/W", f"{layer}/b"])

    conv_bn("conv0")
    for g, blocks in enumerate({50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}[arch.depth]):
        conv_bn(f"group{g}/block0/convshortcut")
        for b in range(blocks):
            for k in (1, 2, 3):
                conv_bn(f"group{g}/block{b}/conv{k}")
    for layer in ("rpn/conv0", "rpn/class", "rpn/box"):
        layer_with_bias(layer)
    if arch.backbone == "FPN":
        for level in (2, 3, 4, 5):
            layer_with_bias(f"fpn/lateral_1x1_c{level}")
            layer_with_bias(f"fpn/posthoc_3x3_p{level}")
    head = ["conv0", "conv1", "conv2", "conv3", "fc"] if conv_head else ["fc6", "fc7"]
    if arch.cascade:
        for stage in (1, 2, 3):
            for layer in [f"head/{h}" for h in head] + ["outputs/class", "outputs/box"]:
                layer_with_bias(f"cascade_rcnn_stage{stage}/{layer}")
    elif arch.backbone == "FPN":
        for layer in head + ["outputs/class", "outputs/box"]:
            layer_with_bias(f"fastrcnn/{layer}")
    else:
        layer_with_bias("fastrcnn/class")
        layer_with_bias("fastrcnn/box")
    if arch.mask:
        for i in range(4 if arch.backbone == "FPN" else 0):
            layer_with_bias(f"maskrcnn/fcn{i}")
        layer_with_bias("maskrcnn/deconv")
        layer_with_bias("maskrcnn/conv")
    return names


def contract_value(d2_name, value, arch, num_classes, input_format="BGR", conv_head=False):
    """(tensorpack name, value) for one detectron2 tensor, by the contract's table, written as string rewrites."""
    name = d2_name.replace("backbone.bottom_up.", "").replace("backbone.", "").replace("roi_heads.res5.", "res5.")
    name = name.replace("stem.conv1", "conv0").replace(".shortcut", ".convshortcut")
    name = re.sub(r"^res(\d)\.(\d+)\.", lambda m: f"group{int(m[1]) - 2}/block{m[2]}/", name)
    name = re.sub(r"fpn_lateral(\d)", r"fpn/lateral_1x1_c\1", name)
    name = re.sub(r"fpn_output(\d)", r"fpn/posthoc_3x3_p\1", name)
    name = name.replace("proposal_generator.rpn_head.conv", "rpn/conv0")
    name = name.replace("proposal_generator.rpn_head.objectness_logits", "rpn/class")
    name = name.replace("proposal_generator.rpn_head.anchor_deltas", "rpn/box")
    name = re.sub(r"roi_heads\.box_head\.(\d)\.fc(\d)", lambda m: f"cascade_rcnn_stage{int(m[1]) + 1}/head/fc{int(m[2]) + 5}", name)
    name = re.sub(r"roi_heads\.box_predictor\.(\d)\.", lambda m: f"cascade_rcnn_stage{int(m[1]) + 1}/outputs/", name)
    name = re.sub(r"roi_heads\.box_head\.(\d)\.conv(\d)",
                  lambda m: f"cascade_rcnn_stage{int(m[1]) + 1}/head/conv{int(m[2]) - 1}", name)
    name = re.sub(r"roi_heads\.box_head\.conv(\d)", lambda m: f"fastrcnn/conv{int(m[1]) - 1}", name)
    name = re.sub(r"roi_heads\.box_head\.fc(\d)", lambda m: f"fastrcnn/fc{int(m[1]) + 5}", name)
    if conv_head:  # 4conv1fc: its one fc is named fc
        name = re.sub(r"(cascade_rcnn_stage\d/head|fastrcnn)/fc6", r"\1/fc", name)
    name = name.replace("roi_heads.box_predictor.", "fastrcnn/outputs/" if arch.backbone == "FPN" else "fastrcnn/")
    name = re.sub(r"roi_heads\.mask_head\.mask_fcn(\d)", lambda m: f"maskrcnn/fcn{int(m[1]) - 1}", name)
    name = name.replace("roi_heads.mask_head.deconv", "maskrcnn/deconv").replace("roi_heads.mask_head.predictor", "maskrcnn/conv")
    name = name.replace("outputs/cls_score", "outputs/class").replace("outputs/bbox_pred", "outputs/box")
    name = name.replace("fastrcnn/cls_score", "fastrcnn/class").replace("fastrcnn/bbox_pred", "fastrcnn/box")
    for d2, tpk in BN.items():
        name = name.replace(f".norm.{d2}", f"/bn/{tpk}")
    if d2_name.endswith("cls_score.weight") or d2_name.endswith("cls_score.bias"):
        value = np.concatenate([value[num_classes:], value[:num_classes]])  # background first
    if re.search(r"box_predictor\.(\d\.)?bbox_pred", d2_name) and value.shape[0] == 4 * num_classes and not arch.cascade:
        value = np.concatenate([value[:4], value])  # background slot = class 0's rows
    if name.endswith(".weight"):
        name = name[: -len(".weight")] + "/W"
        value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T
        if name == "conv0/W" and input_format == "RGB":
            value = value[:, :, ::-1]  # tensorpack feeds BGR images
    elif name.endswith(".bias"):
        name = name[: -len(".bias")] + "/b"
    return name.replace(".", "/"), value
