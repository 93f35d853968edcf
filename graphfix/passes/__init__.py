"""The registry of graphfix passes, in their default order. Each module's docstring says what it rewrites and why."""

from graphfix.passes import cleanup, foldbn, nms, roialign, shapes

PASSES = {"roialign": roialign, "nms": nms, "shapes": shapes, "foldbn": foldbn, "cleanup": cleanup}
DEFAULT = ["roialign", "nms", "shapes", "cleanup"]
WITH_FOLDBN = ["roialign", "nms", "shapes", "foldbn", "cleanup"]  # opt-in: `--passes` or convert's --fold-batchnorm


def summary(name):
    return PASSES[name].__doc__.strip().splitlines()[0]
