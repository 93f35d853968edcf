"""`d2tf evaluate --out OUT COCO_DIR`: COCO AP of detectron2 and of the converted pb on a COCO-style set.

run.py runs the steps and writes the report; dataset.py reads the COCO-style directory, model.py the converted
model's info (from model.fixed.onnx); preprocess.py and postprocess.py restate detectron2's test-time image
preparation and its mapping of detections back to the original image; coco.py makes COCO results and scores them.
"""
