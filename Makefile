# d2tf: detectron2 -> ONNX -> TensorFlow/tensorpack. Every target installs .venv first (idempotent).
PY := .venv/bin/python
# The `d2tf` command (d2tf/cli.py) that `make setup` installs; `d2tf COMMAND --help` for each command's options.
D2TF := .venv/bin/d2tf
comma := ,
export PYTHONPATH := $(CURDIR)

MODEL ?= COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml
OUT ?= out/example
ROIALIGN ?= tensorpack
# With no WEIGHTS, the built-in example: a calibrated random checkpoint of MODEL, generated once.
EXAMPLE_WEIGHTS := out/example-weights/$(subst /,_,$(basename $(MODEL))).pkl
WEIGHTS ?= $(EXAMPLE_WEIGHTS)
EVALUATE_ARG := $(if $(EVALUATE),--evaluate "$(EVALUATE)")
FOLDBN_ARG := $(if $(FOLDBN),--fold-batchnorm)
TENSORPACK_ARG := $(if $(TENSORPACK),--tensorpack "$(TENSORPACK)")
SAVED_MODEL_ARG := $(if $(NO_SAVED_MODEL),--no-saved-model)
TFLITE_ARG := $(if $(NO_TFLITE),--no-tflite) $(foreach v,$(subst $(comma), ,$(TFLITE_VARIANTS)),--tflite-variant $(v))
VERIFY_IMAGES_ARG := $(if $(VERIFY_IMAGES),--verify-images $(patsubst %,"%",$(VERIFY_IMAGES)))
CLASS_NAMES_ARG := $(if $(CLASS_NAMES),--class-names "$(CLASS_NAMES)")
STAGE ?= graphfix
PORT ?= 8080

.PHONY: setup convert verify inspect test mutation bench zoo-table
.DEFAULT_GOAL := convert

setup:
	@bash tools/setup_venv.sh

# export -> graphfix -> tf_import -> verify; OUT gets model.onnx, model.fixed.onnx, model.pb, model.npz,
# saved_model (unless NO_SAVED_MODEL=1), model.tflite (unless NO_TFLITE=1; TFLITE_VARIANTS=float16,int8 adds
# model.float16.tflite and model.int8.tflite, measured by verify), flags.txt, tensorpack_config.py,
# report.md (and model.json, verify.png), or nothing new if any stage fails.
# TENSORPACK=DIR (a tensorpack examples/FasterRCNN checkout): verify also runs tensorpack's own model on the npz.
# VERIFY_IMAGES="a.jpg b.png": verify runs every stage and the SavedModel on these photos too, beside its synthetic
# images.
# CLASS_NAMES=FILE: the model's class names, one a line (or a COCO json's categories), into model.json,
# tensorpack_config.py and verify.png.
convert: setup
	@if [ "$(WEIGHTS)" = "$(EXAMPLE_WEIGHTS)" ] && [ ! -f "$(WEIGHTS)" ]; then \
		echo "[d2tf] no WEIGHTS given: generating the example checkpoint $(WEIGHTS) (calibrated random weights)" >&2; \
		mkdir -p "$$(dirname "$(WEIGHTS)")" && PYTHONWARNINGS=ignore $(D2TF) calibrate --config "$(MODEL)" --out "$(WEIGHTS)"; fi
	$(D2TF) convert --config "$(MODEL)" --weights "$(WEIGHTS)" --out "$(OUT)" --roialign $(ROIALIGN) $(FOLDBN_ARG) $(EVALUATE_ARG) $(TENSORPACK_ARG) $(SAVED_MODEL_ARG) $(TFLITE_ARG) $(VERIFY_IMAGES_ARG) $(CLASS_NAMES_ARG)

# Re-runs the verification of a converted OUT: detectron2 vs onnxruntime (both ONNX files) vs the pb.
verify: setup
	$(D2TF) verify --out "$(OUT)" $(EVALUATE_ARG) $(TENSORPACK_ARG) $(VERIFY_IMAGES_ARG)

# Serves one stage's ONNX file of OUT in Netron (STAGE=export: model.onnx, graphfix: model.fixed.onnx) at
# http://localhost:$(PORT) until Ctrl-C; no browser is started.
inspect: setup
	$(D2TF) inspect --out "$(OUT)" --stage $(STAGE) --port $(PORT)

# ARCHS=name,... limits the suite to those architectures (short names, e.g. mask_rcnn_R_50_FPN_3x); ARCHS=none
# runs only the tests that convert no architecture.
test: setup
	$(if $(ARCHS),ARCHS=$(ARCHS)) $(PY) -m pytest

# Plants each bug of tools/mutation.py's table in a copy of the checkout and runs the fast tests that must catch it;
# fails naming any that survive (a few minutes; NAMES=part,... runs only those whose name contains a part).
mutation: setup
	$(PY) tools/mutation.py $(subst $(comma), ,$(NAMES))

# Speed and size per architecture and stage (slow: minutes per architecture). ARCHS=a,b limits it.
bench: setup
	$(D2TF) bench $(if $(ARCHS),--archs "$(ARCHS)")

# Re-measures every suite architecture (the whole pipeline test, under 30 min) into d2tf/zoo_agreement.json, then
# rewrites docs/zoo.md's table with those figures.
zoo-table: setup
	D2TF_RECORD_AGREEMENT=$(CURDIR)/d2tf/zoo_agreement.json $(PY) -m pytest tests/test_convert.py \
		-k test_pipeline_writes_every_file_and_agrees_exactly_with_detectron2
	$(D2TF) zoo --write docs/zoo.md
