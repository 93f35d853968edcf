"""The op handler registry: one function per ONNX op type, registered with @handles("OpType").

A handler takes (node, inputs, attrs): the NodeProto, a list of Values (None for an omitted optional input) and a
dict of attribute values; it returns one Value or TF tensor per node output. Modules are named by op family, and
`python -m tf_import --list-ops` prints which module handles which op.
"""

import importlib
import pkgutil

HANDLERS = {}


def handles(*op_types):
    def register(fn):
        for op in op_types:
            assert op not in HANDLERS, f"two handlers for {op}"
            HANDLERS[op] = fn
        return fn

    return register


def load_all():
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return HANDLERS
