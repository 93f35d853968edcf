"""Calibrated random checkpoints for any detectron2 config: the test models of d2tf (no zoo weights offline).

Plain random init explodes through 50 FrozenBN layers and gives degenerate boxes. So, in one forward pass on the
synthetic image, each FrozenBN (and BatchNorm: SyncBN models) takes its statistics from the activations it actually
sees (a pre-hook runs before the layer); GroupNorm normalises with the statistics of each input itself, so only its
affine part is drawn, as for the others. Each prediction layer rescales its weights so its outputs have a chosen
spread: varied objectness, class scores above the test threshold, box deltas that move boxes without collapsing
them, masks that are not flat 0.5. Everything is seeded, so the same config and seed give the same file.

    d2tf calibrate --config COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml --out model.pkl
"""

import argparse

import numpy as np

from core import checkpoint, cli, zoo
from core.synthetic import synthetic_image

# Output spread (std) each prediction layer is scaled to, by the last part of its module name.
_OUTPUT_STD = {
    "objectness_logits": 1.5,
    "anchor_deltas": 0.1,
    "cls_score": 2.0,
    "bbox_pred": 0.2,
    "predictor": 1.0,  # mask_head.predictor
    "score_lowres": 1.0,  # keypoint_head's heatmaps: peaks, not a flat map whose argmax any round-off moves
    # A deformable conv's offsets, in pixels: every tap reads between pixels. Random features change fast between
    # pixels, so larger offsets amplify round-off through res3-res5: at 1 px a hundredfold at res5 (float32 against
    # float64), at 0.5 px threefold, at 0.25 px not at all (R50-FPN Mask R-CNN dconv, 2026-12-07).
    "conv2_offset": 0.25,
}
# Layers detectron2 initialises to zero (a deformable conv's offsets, which would make it an ordinary conv), drawn
# at random before they are scaled.
_ZERO_INIT = {"conv2_offset"}

# (std, mean) of the prediction layers that also need a chosen mean, by module name: RetinaNet's classifier scores
# every anchor and class through a sigmoid (the zoo's init is a bias of -4.6, 1% foreground), and only its tail may
# pass the test threshold; its tail is long, and a larger spread saturates the top scores at 1.0.
_OUTPUT_BY_NAME = {"head.cls_score": (0.5, -4.0)}

# Scale of each residual branch (the BN after a bottleneck's conv3). Random nets with full-scale BN branches
# amplify float round-off ~3x per stage (5e-5 relative at res5, in PyTorch and onnxruntime alike, against float64);
# a damped branch keeps blocks close to identity, so runtimes agree as closely as with trained weights.
_RESIDUAL_GAIN = 0.25
# --undamped: full-scale branches and a classifier that is not peaked (cls_score's spread), as a checkpoint
# calibrated otherwise may be: runtimes differ by more than verify's floor tolerances, and verify's noise-scaled
# tolerances must follow (verify/agreement.py).
_UNDAMPED = {"residual_gain": 1.0, "cls_score": 1.0}


def calibrated_weights(cfg, seed=0, height=256, width=320, undamped=False):
    """Builds cfg's model with seeded random weights, calibrates it on the synthetic image (`undamped`: see
    _UNDAMPED), returns its state dict as `{name: float32 ndarray}` (the names detectron2 writes)."""
    import torch
    from detectron2.layers import FrozenBatchNorm2d
    from detectron2.modeling import build_model
    from torch import nn

    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    gen = torch.Generator().manual_seed(seed)
    hooks, residual_gain = [], _UNDAMPED["residual_gain"] if undamped else _RESIDUAL_GAIN
    output_std = {**_OUTPUT_STD, "cls_score": _UNDAMPED["cls_score"]} if undamped else _OUTPUT_STD
    for name, module in model.named_modules():
        if isinstance(module, (FrozenBatchNorm2d, nn.BatchNorm2d, nn.GroupNorm)):
            gain = residual_gain if name.endswith("conv3.norm") else 1.0
            hooks.append(module.register_forward_pre_hook(_norm_from_activations(gen, gain)))
        elif name.split(".")[-1] in output_std and hasattr(module, "weight"):
            if name.split(".")[-1] in _ZERO_INIT:
                with torch.no_grad():
                    module.weight.normal_(generator=gen)
            std, mean = _OUTPUT_BY_NAME.get(name, (output_std[name.split(".")[-1]], None))
            hooks.append(module.register_forward_hook(_scale_output(std * _delta_scale(cfg, name), mean)))
    image = torch.from_numpy(synthetic_image(height, width, seed)).permute(2, 0, 1)
    with torch.no_grad():
        model([{"image": image}])  # every meta-architecture's eval forward (RPN and semantic ones have no inference)
    for hook in hooks:
        hook.remove()
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _delta_scale(cfg, name):
    """How much larger a box-regression layer's outputs are drawn than with detectron2's default weights: its
    deltas are divided by BBOX_REG_WEIGHTS when decoded, so a model trained with other weights predicts deltas that
    many times larger for the same boxes (1 for every other layer)."""
    from detectron2.config import get_cfg

    default, parts = get_cfg().MODEL, name.split(".")
    if parts[-1] == "anchor_deltas":
        weights, reference = cfg.MODEL.RPN.BBOX_REG_WEIGHTS, default.RPN.BBOX_REG_WEIGHTS
    elif name == "head.bbox_pred":  # RetinaNet
        weights, reference = cfg.MODEL.RETINANET.BBOX_REG_WEIGHTS, default.RETINANET.BBOX_REG_WEIGHTS
    elif parts[-1] == "bbox_pred" and parts[-2].isdigit():  # a cascade stage
        stage, stages = int(parts[-2]), default.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS
        weights, reference = cfg.MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS[stage], stages[min(stage, len(stages) - 1)]
    elif parts[-1] == "bbox_pred":
        weights, reference = cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS, default.ROI_BOX_HEAD.BBOX_REG_WEIGHTS
    else:
        return 1.0
    return weights[2] / reference[2]  # the width's: it goes through exp()


def _norm_from_activations(gen, gain):
    import torch

    def hook(module, inputs):
        if getattr(module, "_d2tf_calibrated", False):
            return
        if getattr(module, "running_mean", None) is not None:  # GroupNorm has none
            x = inputs[0]
            var = x.var(dim=(0, 2, 3))
            module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
            # Near-dead channels would otherwise be scaled up by 1/sqrt(tiny var) and amplify float round-off.
            module.running_var.copy_(torch.clamp(var, min=0.1 * float(var.median()) + 1e-3))
        if module.weight is not None:  # RetinaNet's per-level BatchNorms share one affine (CycleBatchNormList)
            n = module.weight.numel()
            module.weight.copy_(gain * (0.6 + 0.4 * torch.rand(n, generator=gen)))
            module.bias.copy_(0.4 * torch.rand(n, generator=gen) - 0.2)
        module._d2tf_calibrated = True

    return hook


def _scale_output(target_std, target_mean=None):
    def hook(module, inputs, output):
        if getattr(module, "_d2tf_calibrated", False):
            return output
        module._d2tf_calibrated = True
        std = float(output.std()) if output.numel() > 1 else 0.0
        if std <= 0:
            return output
        factor = target_std / std
        module.weight.mul_(factor)
        if module.bias is not None:
            module.bias.mul_(factor)
        output = output * factor
        if target_mean is not None:
            shift = target_mean - float(output.mean())
            module.bias.add_(shift)
            output = output + shift
        return output

    return hook


def _seed(text):
    """argparse type: numpy and the synthetic image take seeds 0 to 2**32 - 1."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to {2**32 - 1}, got {text[:40]!r}")
    return seed


def write_checkpoint(config, out, seed=0, undamped=False):
    """Writes a calibrated checkpoint for `config` to `out` (.pkl in model-zoo format or .pth as training does)."""
    weights = calibrated_weights(zoo.load_config(config), seed=seed, undamped=undamped)
    if str(out).endswith(".pth"):
        checkpoint.save_pth(weights, out)
    else:
        checkpoint.save_pkl(weights, out, author=f"d2tf.calibrate seed={seed}" + (" undamped" if undamped else ""))
    return weights


def main(argv=None):
    parser = cli.ArgumentParser(
        prog="d2tf calibrate", description=__doc__.split("\n\n")[0],
        epilog="Reads the config (a model-zoo name, a d2tf/... name, or a .yaml with its _BASE_ files). Writes OUT: a "
        ".pkl in the model zoo's format, or a .pth in detectron2's training format.")
    parser.add_argument("--config", default=zoo.DEFAULT_EXAMPLE, help="zoo name, d2tf derived name or yaml path")
    parser.add_argument("--out", required=True, help="output .pkl (model-zoo format) or .pth (training format)")
    parser.add_argument("--seed", type=_seed, default=0, help="0 to 2**32 - 1 (default 0)")
    parser.add_argument("--undamped", action="store_true",
                        help="full-scale residual branches and an unpeaked classifier: float round-off grows through "
                        "the model as in checkpoints calibrated otherwise, beyond verify's floor tolerances")
    args = parser.parse_args(argv)
    undamped = ", undamped" if args.undamped else ""
    with cli.step(f"calibrating {zoo.short_name(args.config)} (seed {args.seed}{undamped})"):
        weights = write_checkpoint(args.config, args.out, seed=args.seed, undamped=args.undamped)
    size = sum(np.asarray(v).nbytes for v in weights.values()) / 2**20
    cli.log(f"[d2tf] wrote {args.out}: {len(weights)} tensors, {size:.0f} MiB")


if __name__ == "__main__":
    cli.run(main)
