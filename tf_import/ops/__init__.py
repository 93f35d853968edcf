"""The op handler registry: one function per ONNX op type, registered with @handles("OpType").

A handler takes (node, inputs, attrs): the NodeProto, a list of Values (None for an omitted optional input) and a
dict of attribute values; it returns one Value or TF tensor per node output. Modules are named by op family, and
`python -m tf_import --list-ops` prints which module handles which op.

Handlers implement the op forms of the opsets in tf_import.translate.OPSETS. Where an op's older form there is
told apart by the node itself (an attribute that later became an input), the handler reads both; where only the
opset tells (the same node meaning something else), `since` names the first opset the handler implements, and
the Translator refuses nodes of older models.

A handler whose TF form TFLite cannot run without TF's select ops (which TF's pip interpreter no longer has) asks
`for_tflite()` and builds a builtin-only form instead when the Translator translates for tf_import/tflite.py.
"""

import contextvars
import importlib
import pkgutil

HANDLERS = {}
SINCE = {}  # op type -> the first opset whose form its handler implements, where that is above OPSETS' start
TFLITE = contextvars.ContextVar("tflite", default=False)  # set by the Translator while it translates


def for_tflite():
    """True while translating for TFLite's builtin ops."""
    return TFLITE.get()


def handles(*op_types, since=None):
    def register(fn):
        for op in op_types:
            assert op not in HANDLERS, f"two handlers for {op}"
            HANDLERS[op] = fn
            if since is not None:
                SINCE[op] = since
        return fn

    return register


def load_all():
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return HANDLERS
