"""A checkpoint as detectron2's trainer writes it: DetectionCheckpointer.save after an optimizer step, the model's
state beside the optimizer's (SGD momentum buffers), the LR scheduler's and the iteration."""


def save_model_final(cfg, directory, weights=None):
    """Writes `directory`/model_final.pth for `cfg`'s model holding `weights` ({name: ndarray}, or its random init)
    after one SGD step with zero gradients (weight decay moves the weights a little, as training would); returns
    (the path, the model)."""
    import numpy as np
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model
    from detectron2.solver import build_lr_scheduler, build_optimizer

    cfg = cfg.clone()
    cfg.defrost()
    cfg.SOLVER.MAX_ITER, cfg.SOLVER.STEPS = 10, (5,)
    model = build_model(cfg)
    if weights is not None:
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
    optimizer = build_optimizer(cfg, model)
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    checkpointer = DetectionCheckpointer(model, str(directory), optimizer=optimizer,
                                         scheduler=build_lr_scheduler(cfg, optimizer))
    checkpointer.save("model_final", iteration=9)
    return directory / "model_final.pth", model
