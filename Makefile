# d2tf: detectron2 -> ONNX -> TensorFlow/tensorpack. Every target installs .venv first (idempotent).
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)

MODEL ?= COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml
OUT ?= out/example
WEIGHTS ?= $(OUT)/example_weights.pkl
ROIALIGN ?= tensorpack

.PHONY: setup convert test bench
.DEFAULT_GOAL := convert

setup:
	@bash tools/setup_venv.sh

# With no WEIGHTS given, converts the built-in example: a calibrated random checkpoint of MODEL.
convert: setup
	@mkdir -p $(OUT)
	@test "$(origin WEIGHTS)" = "command line" || test -f $(WEIGHTS) || $(PY) -m d2tf.calibrate --config $(MODEL) --out $(WEIGHTS)
	$(PY) -m export --config $(MODEL) --weights $(WEIGHTS) --out $(OUT)
	$(PY) -m graphfix $(OUT)/model.onnx --out $(OUT)/model.fixed.onnx --roialign $(ROIALIGN)
	$(PY) -m tf_import $(OUT)/model.fixed.onnx --out $(OUT)

test: setup
	$(PY) -m pytest

# Speed and size per architecture and stage (slow: minutes per architecture). ARCHS=a,b limits it.
bench: setup
	$(PY) bench/run.py $(if $(ARCHS),--archs $(ARCHS))
