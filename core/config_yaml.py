"""Reading a yaml config and every `_BASE_` it names, for detectron2, without running anything they hold.

detectron2's `merge_from_file` falls back to `yaml.unsafe_load`, so a tag such as `!!python/object/apply:os.system`
anywhere in the chain would run code while the config loads. Configs come from the same untrusted places as
weights, so d2tf reads the chain itself with a loader that knows plain YAML types and one Python tag:
`!!python/object/apply:eval` on arithmetic, which the zoo's RetinaNet configs use for their anchor sizes
(`[[x, x * 2**(1.0/3), x * 2**(2.0/3)] for x in [32, 64, 128, 256, 512]]`). Its expression is computed by
`arithmetic` below, never by Python's eval.

Every bound on what a chain may cost is checked before the work it bounds (docs/security.md gives each with its
reason): the size and kind of each file before it is parsed, the nesting and the size of its content with aliases
expanded as it is composed (detectron2's merge expands them: a kilobyte of nested aliases becomes gigabytes), and the
number of files a chain reads.
"""

import ast
import itertools
import operator
import os

import yaml

from core import D2TFError
from core.files import read_regular

BASE_KEY = "_BASE_"  # fvcore's key for the configs a yaml inherits from
_STANDARD_TAG = "tag:yaml.org,2002:"

# A config holding every key detectron2 has is 5.4 KB of 522 values (keys, items and scalars) nested 6 deep.
_LARGEST_FILE = 32 * 1024  # bytes of one file: some 16,000 values for PyYAML's pure-Python loader to parse
_MOST_NODES = 10_000  # values in one file with its aliases expanded, as detectron2's merge expands them
_DEEPEST = 50  # levels of nesting, aliases expanded: PyYAML's composer and the merges recurse once per level
_MOST_FILES = 16  # files one chain reads, counting repeats: the zoo's read at most 3
_LONGEST_INTEGER = 100  # characters: Python's int() takes time quadratic in the digits, and refuses past 4300


class _PlainLoader(yaml.SafeLoader):
    """SafeLoader for one config file's text that refuses in one line naming file and line (SafeLoader's own errors
    are several lines, and detectron2 would catch them to retry unsafely) an unknown tag, and content nested deeper
    than _DEEPEST or holding more than _MOST_NODES values once its aliases are expanded."""

    def __init__(self, text, path):
        super().__init__(text)
        self.name = path  # what the marks of errors name
        self.open_nodes = 0  # nodes being composed, one inside the other
        self.values_left = [_MOST_VALUES]  # for the eval tag's comprehensions, all of this file's together

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):  # a node composed and measured already, unless one still open
            return super().compose_node(parent, index)
        if self.open_nodes == _DEEPEST:  # before PyYAML's recursive composer runs out of stack
            raise D2TFError(f"{_where(self.peek_event().start_mark)}: nested deeper than {_DEEPEST} levels")
        self.open_nodes += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self.open_nodes -= 1
        _measure(node)
        return node


def _where(mark):
    return f"{mark.name}:{mark.line + 1}"


def _measure(node):
    """Records on a composed node how many values and levels it holds with its aliases expanded, from its children's
    records (an alias's node is composed before it is named), refusing more than the bounds."""
    children = node.value if isinstance(node, yaml.SequenceNode) else (
        [child for pair in node.value for child in pair] if isinstance(node, yaml.MappingNode) else [])
    where = _where(node.start_mark)
    if not all(hasattr(child, "expanded_values") for child in children):  # an alias to a node still being composed
        raise D2TFError(f"{where}: an alias inside the node it names: a structure that holds itself")
    node.expanded_values = 1 + sum(child.expanded_values for child in children)
    node.expanded_levels = 1 + max((child.expanded_levels for child in children), default=0)
    if node.expanded_levels > _DEEPEST:
        raise D2TFError(f"{where}: nested deeper than {_DEEPEST} levels once its aliases are expanded")
    if node.expanded_values > _MOST_NODES:
        raise D2TFError(f"{where}: more than {_MOST_NODES} values once its aliases are expanded")


def _refuse_tag(loader, node):
    tag = node.tag.replace(_STANDARD_TAG, "!!", 1)
    raise D2TFError(f"{_where(node.start_mark)}: YAML tag {tag} refused: configs must be plain YAML (Python tags run "
                    "code when detectron2 loads them)")


def _construct_int(loader, node):
    if len(node.value) > _LONGEST_INTEGER:
        raise D2TFError(f"{_where(node.start_mark)}: an integer of {len(node.value)} characters, longer than "
                        f"{_LONGEST_INTEGER}")
    return loader.construct_yaml_int(node)


_EVAL_TAG = _STANDARD_TAG + "python/object/apply:eval"
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}
# Bounds that keep `**` and `*` from growing numbers for minutes: no config value comes near them.
_LARGEST, _LARGEST_EXPONENT = 2.0**64, 64
_MOST_VALUES = 100_000  # values the comprehensions of one file may make
# Characters of an expression: the zoo's is 70, and CPython's parser fails on thousands of nested operators (a
# RecursionError at 5,000 unary minus signs, a MemoryError at 200,000).
_LONGEST_EXPRESSION = 1000


def arithmetic(expression, budget=None):
    """The value of an expression of numbers, lists and list comprehensions over them, with + - * / and **;
    ValueError naming what else it holds. `budget`, `[count]`, is what its comprehensions may make, shared by the
    expressions it is passed to (by default _MOST_VALUES for this one)."""
    if len(expression) > _LONGEST_EXPRESSION:
        raise ValueError(f"an expression of {len(expression)} characters, longer than {_LONGEST_EXPRESSION}")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"not a Python expression ({e.msg})") from None
    budget = [_MOST_VALUES] if budget is None else budget

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
    where = f"{_where(node.start_mark)}: YAML tag !!python/object/apply:eval"
    if not (args and len(args) == 1 and isinstance(args[0], str)):
        raise D2TFError(f"{where} refused: it takes one expression, as a string")
    try:
        return arithmetic(args[0], loader.values_left)
    except (ValueError, ArithmeticError, RecursionError) as e:
        raise D2TFError(f"{where} refused: d2tf computes only arithmetic on numbers and lists; {e}") from None


_PlainLoader.add_constructor(_EVAL_TAG, _construct_eval)
_PlainLoader.add_constructor(_STANDARD_TAG + "int", _construct_int)
_PlainLoader.add_constructor(None, _refuse_tag)  # None: every tag without a constructor of its own


def load_chain(path):
    """The content of `path` with its `_BASE_` files merged under it as fvcore merges them (each base in order, then
    the file itself, mappings merged key by key); D2TFError on the first tag that is not plain YAML or arithmetic,
    on a file that cannot be read or is not a mapping, or on a bound exceeded."""
    reads = itertools.count(1)

    def load(path, including):
        if os.path.realpath(path) in including:
            raise D2TFError(f"{path}: {BASE_KEY} chain includes this file again")
        if next(reads) > _MOST_FILES:  # a base named twice by each of 30 files would be read 2**30 times
            raise D2TFError(f"{path}: {BASE_KEY} chain reads more than {_MOST_FILES} files")
        data = _load(path)
        if data is None:  # an empty file
            return {}
        if not isinstance(data, dict):
            raise D2TFError(f"{path}: a config is a mapping of keys, not a {type(data).__name__}")
        merged = {}
        for base in _bases(path, data):
            _merge_into(load(base, including + (os.path.realpath(path),)), merged, path)
        _merge_into({k: v for k, v in data.items() if k != BASE_KEY}, merged, path)
        return merged

    return load(path, ())


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
        return _PlainLoader(_read(path).decode(), path).get_single_data()
    except yaml.MarkedYAMLError as e:  # syntax errors, which know their line
        raise D2TFError(f"{path}:{e.problem_mark.line + 1}: not valid YAML: {e.problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:  # bytes that are not text, characters YAML does not take
        raise D2TFError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None


def _read(path):
    """The bytes of a regular file of at most _LARGEST_FILE bytes (a FIFO would block, /dev/zero never end)."""
    try:
        data = read_regular(path, _LARGEST_FILE)
    except OSError as e:
        raise D2TFError(f"cannot read config {path}: {e.strerror}") from None
    except ValueError:
        raise D2TFError(f"cannot read config {path}: not a regular file") from None
    if data is None:
        raise D2TFError(f"{path}: larger than {_LARGEST_FILE} bytes, which no config needs")
    return data


def _bases(path, data):
    """The `_BASE_` paths of a loaded yaml: relative to the including file, `~` expanded, as fvcore does."""
    names = data.get(BASE_KEY, [])
    for name in names if isinstance(names, list) else [names]:
        if not isinstance(name, str):
            raise D2TFError(f"{path}: {BASE_KEY} must be a file path or a list of them, not {name!r}")
        if name.startswith(("http://", "https://")):  # fvcore would download it
            raise D2TFError(f"{path}: {BASE_KEY} {name} is remote: download it and name the local file")
        yield os.path.join(os.path.dirname(path), os.path.expanduser(name))
