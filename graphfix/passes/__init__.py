"""The registry of graphfix passes, in their default order. Each module's docstring says what it rewrites and why."""

from graphfix.passes import cleanup, nms, roialign, shapes

PASSES = {"roialign": roialign, "nms": nms, "shapes": shapes, "cleanup": cleanup}
DEFAULT = ["roialign", "nms", "shapes", "cleanup"]


def summary(name):
    return PASSES[name].__doc__.strip().splitlines()[0]
