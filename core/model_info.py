"""The model info: what export learns from the config and weights that later stages need, so none of them reads the
config again. One definition: export builds a ModelInfo (export.info), core.metadata carries it in each ONNX file's
metadata as JSON, model.json is a readable copy, and every stage reads it back with `from_json`.

VERSION changes whenever a field is added, removed or changes meaning: a file written under another version is
refused in one line (convert again) rather than read with fields missing or misread."""

import dataclasses
import json
import typing

from core import D2TFError, contract

VERSION = 1


@dataclasses.dataclass(frozen=True)
class Source:
    config: str  # as the user named it: a zoo name or a yaml path
    weights: str
    weights_sha256: str


@dataclasses.dataclass(frozen=True)
class Architecture:
    name: str  # e.g. "R50-FPN Mask R-CNN"
    meta: str  # MODEL.META_ARCHITECTURE
    backbone: str  # "FPN", "C4" or "DC5"
    depth: int
    mask: bool
    keypoints: bool
    cascade: bool
    class_agnostic: bool  # one box regression for every class (cascade heads)
    norm: str  # RESNETS.NORM: "FrozenBN", "SyncBN", "GN"
    aligned: bool  # the box pooler is ROIAlignV2 (half-pixel offset)
    groups: int
    width_per_group: int
    stride_in_1x1: bool
    reference_config: str  # the zoo config whose graph this one shares


@dataclasses.dataclass(frozen=True)
class Input:
    """The graph's input, as the contract defines it; what varies is the padding and the traced size."""
    size_divisibility: int  # the graph pads each side to a multiple (FPN: 32; 0: no padding)
    traced_size: list  # [H, W] export traced at
    name: str = contract.INPUT
    shape: list = dataclasses.field(default_factory=lambda: ["height", "width", 3])
    dtype: str = contract.INPUT_DTYPE
    format: str = "BGR"  # the channel order the graph takes, the config's INPUT.FORMAT
    range: list = dataclasses.field(default_factory=lambda: [0, 255])


@dataclasses.dataclass(frozen=True)
class Pooler:
    type: str  # POOLER_TYPE, e.g. "ROIAlignV2"
    resolution: int
    sampling_ratio: int
    aligned: bool


@dataclasses.dataclass(frozen=True)
class TestSettings:
    """The config's test-time values; None where the meta-architecture has no such step."""
    score_thresh: float = None
    nms_thresh: float = None
    detections_per_image: int = None
    topk_candidates: int = None  # RetinaNet
    rpn_pre_nms_topk: int = None
    rpn_post_nms_topk: int = None
    rpn_nms_thresh: float = None


@dataclasses.dataclass(frozen=True)
class Resize:
    """detectron2's test-time ResizeShortestEdge (0: images are not resized)."""
    min_size_test: int
    max_size_test: int


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    d2tf_version: str
    source: Source
    architecture: Architecture
    num_classes: int  # 0-based ids, background excluded, as detectron2 numbers them
    class_names: list  # the test dataset's names when detectron2 knows them for num_classes, else None
    input: Input
    pixel_mean_bgr: list
    pixel_std_bgr: list
    outputs: list  # contract.onnx_outputs of the architecture
    pooler: dict[str, Pooler]  # {"box" | "mask" | "keypoint": Pooler}, {} without RoIAlign
    mask_resolution: int  # side of the masks output, None without masks
    test: TestSettings
    resize: Resize
    onnx_opset: int
    num_keypoints: int = None
    keypoint_skeleton: list = dataclasses.field(default_factory=list)  # [a, b] keypoint index pairs verify.png draws
    sem_seg_classes: int = None  # Panoptic FPN's stuff classes
    # {config key: value} of the keys a trained model tuned away from its reference zoo config (export/supported.py)
    tuned: dict = dataclasses.field(default_factory=dict)

    def to_json(self, indent=None):
        return json.dumps({"version": VERSION, **dataclasses.asdict(self)}, indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text, path):
        """The info serialised in `text` (from `path`, named in errors)."""
        value = json.loads(text)
        version = value.pop("version", None) if isinstance(value, dict) else None
        if version != VERSION:
            raise D2TFError(f"{path}'s model info is version {version}, this d2tf reads version {VERSION}: convert the "
                            "model again with this d2tf")
        return _build(cls, value, path)

    @classmethod
    def read(cls, path):
        """The info of a model.json."""
        with open(path) as f:
            return cls.from_json(f.read(), path)


def _build(cls, value, path):
    """A `cls` dataclass of the dict `value`, nested dataclasses and {str: dataclass} fields built in turn."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    required = {name for name, f in names.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    if not isinstance(value, dict):
        raise D2TFError(f"{path}'s model info has {type(value).__name__} for a {cls.__name__}: was it written by "
                        "d2tf's export?")
    missing, unknown = sorted(required - set(value)), sorted(set(value) - set(names))
    if missing or unknown:
        raise D2TFError(f"{path}'s model info does not match this d2tf's {cls.__name__} (missing: "
                        f"{', '.join(missing) or 'none'}; unknown: {', '.join(map(repr, unknown)) or 'none'})")
    return cls(**{key: _field(names[key].type, item, path) for key, item in value.items()})


def _field(kind, value, path):
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, path)
    if typing.get_origin(kind) is dict and value is not None:
        return {key: _field(typing.get_args(kind)[1], item, path) for key, item in value.items()}
    return value
