"""Reading a yaml config and every `_BASE_` it names, for detectron2, without running anything they hold.

detectron2's `merge_from_file` falls back to `yaml.unsafe_load`, so a tag such as `!!python/object/apply:os.system`
anywhere in the chain would run code while the config loads. Configs come from the same untrusted places as
weights, so d2tf reads the chain itself with a loader that knows plain YAML types and one Python tag:
`!!python/object/apply:eval` on arithmetic, which the zoo's RetinaNet configs use for their anchor sizes
(`[[x, x * 2**(1.0/3), x * 2**(2.0/3)] for x in [32, 64, 128, 256, 512]]`). Its expression is computed by
`arithmetic` below, never by Python's eval.
"""

import ast
import operator
import os

import yaml

from core import D2TFError

BASE_KEY = "_BASE_"  # fvcore's key for the configs a yaml inherits from
_STANDARD_TAG = "tag:yaml.org,2002:"


class _PlainLoader(yaml.SafeLoader):
    """SafeLoader that refuses an unknown tag in one line naming file and line (SafeLoader's own error is several
    lines, and detectron2 would catch it to retry unsafely)."""


def _refuse_tag(loader, node):
    tag = node.tag.replace(_STANDARD_TAG, "!!", 1)
    raise D2TFError(f"{node.start_mark.name}:{node.start_mark.line + 1}: YAML tag {tag} refused: configs must be "
                    "plain YAML (Python tags run code when detectron2 loads them)")


_EVAL_TAG = _STANDARD_TAG + "python/object/apply:eval"
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}
# Bounds that keep `**` and `*` from growing numbers for minutes: no config value comes near them.
_LARGEST, _LARGEST_EXPONENT = 2.0**64, 64
_MOST_VALUES = 100_000  # values a comprehension may make


def arithmetic(expression):
    """The value of an expression of numbers, lists and list comprehensions over them, with + - * / and **;
    ValueError naming what else it holds."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"not a Python expression ({e.msg})") from None
    budget = [_MOST_VALUES]

    def value(node, names):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [value(e, names) for e in node.elts]
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](_number(value(node.operand, names)))
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = _number(value(node.left, names)), _number(value(node.right, names))
            if isinstance(node.op, (ast.Pow, ast.Mult)) and max(abs(left), abs(right)) > _LARGEST or (
                    isinstance(node.op, ast.Pow) and abs(right) > _LARGEST_EXPONENT):
                raise ValueError("numbers too large for a config")
            result = _OPERATORS[type(node.op)](left, right)
            if isinstance(result, complex):  # a negative number to a fractional power
                raise ValueError(f"{ast.unparse(node)!r} is not a real number")
            return result
        if isinstance(node, ast.ListComp):
            return list(comprehension(node.elt, node.generators, names))
        raise ValueError(f"{ast.unparse(node)!r} is not arithmetic on numbers and lists")

    def comprehension(element, generators, names):
        if not generators:
            budget[0] -= 1
            if budget[0] < 0:
                raise ValueError(f"more than {_MOST_VALUES} values")
            yield value(element, names)
            return
        first = generators[0]
        if first.ifs or first.is_async or not isinstance(first.target, ast.Name):
            raise ValueError(f"{ast.unparse(first)!r}: only `for name in list` is arithmetic")
        items = value(first.iter, names)
        if not isinstance(items, list):
            raise ValueError(f"{ast.unparse(first.iter)!r} is not a list")
        for item in items:
            yield from comprehension(element, generators[1:], {**names, first.target.id: item})

    return value(tree.body, {})


def _number(x):
    if type(x) not in (int, float):
        raise ValueError("arithmetic on a list")
    return x


def _construct_eval(loader, node):
    """`!!python/object/apply:eval [expression]`, computed by `arithmetic`."""
    args = loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else None
    where = f"{node.start_mark.name}:{node.start_mark.line + 1}: YAML tag !!python/object/apply:eval"
    if not (args and len(args) == 1 and isinstance(args[0], str)):
        raise D2TFError(f"{where} refused: it takes one expression, as a string")
    try:
        return arithmetic(args[0])
    except (ValueError, ArithmeticError, RecursionError) as e:
        raise D2TFError(f"{where} refused: d2tf computes only arithmetic on numbers and lists; {e}") from None


_PlainLoader.add_constructor(_EVAL_TAG, _construct_eval)
_PlainLoader.add_constructor(None, _refuse_tag)  # None: every tag without a constructor of its own


def load_chain(path, _including=()):
    """The content of `path` with its `_BASE_` files merged under it as fvcore merges them (each base in order, then
    the file itself, mappings merged key by key); D2TFError on the first tag that is not plain YAML or arithmetic,
    or on a file that cannot be read."""
    if os.path.realpath(path) in _including:
        raise D2TFError(f"{path}: {BASE_KEY} chain includes this file again")
    data = _load(path)
    merged = {}
    for base in _bases(path, data):
        _merge_into(load_chain(base, _including + (os.path.realpath(path),)), merged, path)
    if isinstance(data, dict):
        _merge_into({k: v for k, v in data.items() if k != BASE_KEY}, merged, path)
        return merged
    return data if data is not None else merged


def _merge_into(source, target, path):
    for key, value in source.items():
        if isinstance(value, dict) and key in target:
            if not isinstance(target[key], dict):
                raise D2TFError(f"{path}: {key} is a mapping here but not in its {BASE_KEY}")
            _merge_into(value, target[key], path)
        else:
            target[key] = value


def _load(path):
    try:
        with open(path) as f:
            return yaml.load(f, _PlainLoader)
    except OSError as e:
        raise D2TFError(f"cannot read config {path}: {e.strerror}") from None
    except yaml.MarkedYAMLError as e:  # syntax errors, which know their line
        raise D2TFError(f"{path}:{e.problem_mark.line + 1}: not valid YAML: {e.problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:  # bytes that are not text
        raise D2TFError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None


def _bases(path, data):
    """The `_BASE_` paths of a loaded yaml: relative to the including file, `~` expanded, as fvcore does."""
    names = data.get(BASE_KEY, []) if isinstance(data, dict) else []
    for name in names if isinstance(names, list) else [names]:
        if not isinstance(name, str):
            raise D2TFError(f"{path}: {BASE_KEY} must be a file path or a list of them, not {name!r}")
        if name.startswith(("http://", "https://")):  # fvcore would download it
            raise D2TFError(f"{path}: {BASE_KEY} {name} is remote: download it and name the local file")
        yield os.path.join(os.path.dirname(path), os.path.expanduser(name))
