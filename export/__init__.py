"""Stage 1 of d2tf: a detectron2 config + checkpoint -> `model.onnx` (traced, carrying its model info) and a
readable copy of that info, `model.json`.

    python -m export --config <zoo name | yaml> --weights <pkl|pth> --out <dir>
"""
