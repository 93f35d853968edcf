"""`make mutation`: plants each named bug below in a copy of the checkout and runs the fast tests that must catch it
(no architecture is built). A mutation the tests let through is a survivor: printed, and the exit status is 1.

    python tools/mutation.py [NAME_PART ...]   # only the mutations whose name contains one of these

Each row is (name, file, the text replaced, its replacement, the tests to run: pytest arguments). The text must occur
in the file exactly once, so a row that no longer applies fails loudly instead of passing silently. Add a row for
each judging or guarding piece of code you add, and watch it fail the tests before you rely on them."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MATCHING, KEPT, MEMORY = "tests/test_matching.py", "tests/test_kept_set.py", "tests/test_verify_memory.py"
CHUNKS, ROI_ALIGN_OPS = "tests/test_roi_chunks.py", "tests/tf_import/ops/test_roi_align.py"
PHOTOS = "tests/test_verify_images.py"
GATE, LOWERED = "tests/test_verify_gate.py", "tests/test_lowered.py"
CONFIGS, CHECKPOINTS = "tests/test_config_safety.py", "tests/test_checkpoint.py"
DEFORM = ["tests/test_export.py", "-k", "traced_deformable"]
MUTATIONS = [
    ("matching: labels ignored", "core/matching.py",
     "    iou = np.where(same, iou, -1.0)\n", "", [MATCHING]),
    ("matching: references in index order, not by score", "core/matching.py",
     'np.argsort(-np.asarray(ref["scores"]), kind="stable")', 'range(len(ref["scores"]))', [MATCHING]),
    ("matching: the IoU threshold exclusive", "core/matching.py",
     "iou[i, j] >= iou_threshold", "iou[i, j] > iou_threshold", [MATCHING]),
    ("matching: a taken candidate offered again", "core/matching.py",
     "np.argmax(np.where(taken, -1.0, iou[i]))", "np.argmax(iou[i])", [MATCHING]),
    ("matching: disjoint boxes overlap", "core/matching.py",
     "np.clip(rb - lt, 0, None)", "np.abs(rb - lt)", [MATCHING]),
    ("unpickler: builtins allowed", "core/checkpoint.py",
     "        if (module, name) not in _SAFE_GLOBALS:",
     '        if module != "builtins" and (module, name) not in _SAFE_GLOBALS:',
     ["tests/test_checkpoint.py", "-k", "payload_family"]),
    ("unpickler: finite judged before the float32 cast", "core/checkpoint.py",
     "np.isfinite(a.astype(np.float32, copy=False))", "np.isfinite(a)",
     ["tests/test_checkpoint.py", "-k", "beyond"]),
    ("unpickler: names printed raw", "core/checkpoint.py", "return text if text.isprintable() else",
     "return text if True else", ["tests/test_checkpoint.py", "-k", "escaped"]),
    ("config: aliases expanded without bound", "core/config_yaml.py",
     "    if node.expanded_values > _MOST_NODES:", "    if False:", [CONFIGS, "-k", "hostile and aliases"]),
    ("config: nesting without bound", "core/config_yaml.py",
     "        if self.open_nodes == _DEEPEST:", "        if False:", [CONFIGS, "-k", "hostile and deep"]),
    ("config: aliases nested without bound", "core/config_yaml.py",
     "    if node.expanded_levels > _DEEPEST:", "    if False:", [CONFIGS, "-k", "hostile and aliases"]),
    ("config: an alias inside its own node", "core/config_yaml.py",
     '    if not all(hasattr(child, "expanded_values") for child in children):', "    if False:",
     [CONFIGS, "-k", "hostile and alias"]),
    ("config: files of any size", "core/files.py",
     "    return data if len(data) <= limit else None", "    return data", [CONFIGS, "-k", "hostile"]),
    ("config: files of any kind", "core/files.py",
     "        if not stat.S_ISREG(os.fstat(fd).st_mode):", "        if False:", [CONFIGS, "-k", "hostile and BASE"]),
    ("config: chains read without bound", "core/config_yaml.py",
     "        if next(reads) > _MOST_FILES:", "        if False:", [CONFIGS, "-k", "hostile and chain"]),
    ("config: a base holding a list", "core/config_yaml.py",
     "        if not isinstance(data, dict):", "        if False:", [CONFIGS, "-k", "hostile and holding"]),
    ("config: integers of any length", "core/config_yaml.py",
     "    if len(node.value) > _LONGEST_INTEGER:", "    if False:", [CONFIGS, "-k", "hostile and integer"]),
    ("config: expressions of any length", "core/config_yaml.py",
     "    if len(expression) > _LONGEST_EXPRESSION:", "    if False:", [CONFIGS, "-k", "eval_tag"]),
    ("config: a budget of values per expression", "core/config_yaml.py",
     "arithmetic(args[0], loader.values_left)", "arithmetic(args[0])", [CONFIGS, "-k", "hostile and evals"]),
    ("unpickler: numpy.ndarray called", "core/checkpoint.py",
     '        raise _Refused("it calls numpy.ndarray, which a model-zoo checkpoint never does")',
     "        return np.ndarray(*args)", [CHECKPOINTS, "-k", "hostile_pickle"]),
    ("unpickler: _reconstruct allocates its shape", "core/checkpoint.py",
     "    return np.empty(0, dtype)", "    return np.empty(shape, dtype)", [CHECKPOINTS, "-k", "hostile_pickle"]),
    ("unpickler: any codec", "core/checkpoint.py", '    if encoding != "latin1" or not isinstance(text, str):',
     "    if not isinstance(text, str):", [CHECKPOINTS, "-k", "hostile_pickle"]),
    ("unpickler: nesting without bound", "core/checkpoint.py",
     "            elif _nest(op, depths, marks) > _DEEPEST:", "            elif _nest(op, depths, marks) < 0:",
     [CHECKPOINTS, "-k", "nested"]),
    ("unpickler: opcodes without bound", "core/checkpoint.py",
     "            if next(opcodes) > _MOST_OPCODES:", "            if False:", [CHECKPOINTS, "-k", "hostile_pickle"]),
    ("unpickler: memo indices out of order", "core/checkpoint.py",
     "                if index > len(memo):", "                if False:", [CHECKPOINTS, "-k", "hostile_pickle"]),
    ("unpickler: pickles scanned from a file object", "core/checkpoint.py",
     "_mapped(path) as data:\n            _check_pickles(data, 1)",
     'open(path, "rb") as data:\n            _check_pickles(data, 1)', [CHECKPOINTS, "-k", "hostile_pickle"]),
    ("torch: zip entries of any size", "core/checkpoint.py",
     "        if declared > size:", "        if False:", [CHECKPOINTS, "-k", "hostile_torch and deflated"]),
    ("torch: pickles unscanned", "core/checkpoint.py",
     "        _check_torch_file(path)\n", "", [CHECKPOINTS, "-k", "hostile_torch and nested"]),
    ("checkpoint: element counts without bound", "core/checkpoint.py",
     "    if sum(counts.values()) > size:", "    if False:", [CHECKPOINTS, "-k", "hostile_torch and stride"]),
    ("checkpoint: sparse tensors read", "core/checkpoint.py",
     "    if value.layout != torch.strided:", "    if False:", [CHECKPOINTS, "-k", "hostile_torch and sparse"]),
    ("checkpoint: meta tensors read", "core/checkpoint.py",
     '    if value.device.type != "cpu":', "    if False:", [CHECKPOINTS, "-k", "hostile_torch and meta"]),
    ("torch: a later pickle protocol not named", "core/checkpoint.py",
     "    if opcode and opcode.proto > 2:", "    if False:", [CHECKPOINTS, "-k", "hostile_torch and protocol"]),
    ("sizes: no upper bound", "core/cli.py", "0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE",
     "0 < height and 0 < width", ["tests/test_publish.py", "-k", "bad_out_and_sizes"]),
    ("gate: unmatched detections ignored", "verify/agreement.py",
     '    if unmatched > row.get("at_the_edge", 0):', "    if False:", [KEPT]),
    ("gate: NMS near-ties across classes", "verify/agreement.py",
     ' & (ref["classes"][:, None] == cand["classes"][None, :])', "", [KEPT]),
    ("gate: NMS near-ties without overlap", "verify/agreement.py",
     "(overlap > nms_thresh)", "(overlap >= 0)", [KEPT]),
    ("gate: a near-tie paired twice", "verify/agreement.py", "        free[paired[1]] = False\n", "", [KEPT]),
    ("gate: the cap's edge below the cap", "verify/agreement.py",
     ' and len(side["scores"]) == kept.cap:', ":", [KEPT]),
    ("gate: the threshold's edge too wide", "verify/agreement.py",
     "edge |= np.abs(scores - kept.score_thresh) <= score_tolerance",
     "edge |= np.abs(scores - kept.score_thresh) <= 1", [KEPT]),
    ("gate: kept at the NMS threshold at any IoU", "verify/agreement.py",
     "(np.abs(overlap - nms_thresh) <= NMS_IOU_TIE)", "(overlap >= 0)", [KEPT]),
    ("gate: kept at the NMS threshold beside another class", "verify/agreement.py",
     '(side["classes"][indices, None] == side["classes"][None, :])', "True", [KEPT]),
    ("gate: kept at the NMS threshold beside a worse detection", "verify/agreement.py",
     '& (side["scores"][None, :] > side["scores"][indices, None])', "", [KEPT]),
    ("deformable conv: each tap's y offset read from its x", "export/deform_conv.py",
     "tap_y[:, None, None] + offset[:, 0]", "tap_y[:, None, None] + offset[:, 1]", DEFORM),
    ("deformable conv: corners outside the map read the edge", "export/deform_conv.py",
     "* torch.where(valid, weight, 0.0)", "* weight", DEFORM),
    ("lowering: a float16 model's threshold not read through its DEQUANTIZE", "runners/lowered.py",
     "    if source is not None and source.opcodeIndex in dequantize:", "    if False:", [LOWERED]),
    ("lowering: float16's lowest taken for a threshold", "runners/lowered.py",
     "max(NO_SCORE_THRESHOLD, float(np.finfo(value.dtype).min))", "NO_SCORE_THRESHOLD", [LOWERED]),
    ("verify: an earlier run's smaller TFLite model run as this one's", "verify/run.py",
     "os.path.isfile(p) and os.path.getmtime(p) >= written", "os.path.isfile(p)", [GATE]),
    ("gate: every proposal kept on one side taken for a near-tie", "verify/agreement.py",
     "    explained = _explained(*rpn, match.pairs, kept, objectness_tolerance)\n",
     '    explained = [np.setdiff1d(np.arange(len(s["scores"])), match.pairs[:, c]) for c, s in enumerate(rpn)]\n',
     [KEPT]),
    ("gate: a proposal tie explains detections that do not overlap it", "verify/agreement.py",
     'iou_matrix(side["boxes"][rest], swapped).max(axis=1, initial=0.0) > 0', "True", [KEPT]),
    ("gate: proposal ties judged with an objectness tolerance of 1", "verify/agreement.py",
     'swapped_proposals(ref, cand, kept.proposals, tolerance["objectness"])',
     'swapped_proposals(ref, cand, kept.proposals, 1.0)', [KEPT]),
    ("gate: a matched detection across the threshold let through", "verify/agreement.py",
     "return int(np.sum(((scores[0] > threshold) != (scores[1] > threshold)) & away))", "return 0", [KEPT]),
    ("gate: the threshold checked without its edge", "verify/agreement.py",
     "((scores[0] > threshold) != (scores[1] > threshold)) & away",
     "((scores[0] > threshold) != (scores[1] > threshold))", [KEPT]),
    ("gate: the noise replaces the floor", "verify/agreement.py",
     "max(floor, NOISE_MULTIPLE * (noise.get(key) or 0.0))", "NOISE_MULTIPLE * (noise.get(key) or 0.0)", [GATE]),
    ("gate: the noise not scaled", "verify/agreement.py",
     "max(floor, NOISE_MULTIPLE * (noise.get(key) or 0.0))", "max(floor, noise.get(key) or 0.0)", [GATE]),
    ("gate: the noise measured but not applied", "verify/run.py",
     "    tolerance = noise_tolerance(noise or {})\n", "    tolerance = EXACT\n", [GATE]),
    ("gate: the noise not measured where a check is outside the floor", "verify/run.py",
     'if measure_noise or (figures["failures"] and _count(outputs["detectron2"]) != 0):', "if measure_noise:",
     [GATE, "-k", "noise_is_measured"]),
    ("lowered: the RPN's NMS lowered too", "runners/lowered.py",
     "        if _thresholds(values[name]):", "        if True:", [LOWERED]),
    ("lowered: the model's threshold not checked", "runners/lowered.py",
     "    if wrong:\n", "    if False:\n", [LOWERED]),
    ("lowered: the TFLite model's NMS left as it was", "runners/lowered.py",
     "            op.inputs[SCORE_THRESHOLD_INPUT] = lowered\n", "", [LOWERED, "-k", "tflite"]),
    ("memory: a runtime larger than the budget waits forever", "verify/memory.py",
     "return self.held == 0 or self.held + amount <= self.total", "return self.held + amount <= self.total",
     [MEMORY]),
    ("memory: runtimes never wait", "verify/memory.py",
     "return self.held == 0 or self.held + amount <= self.total", "return True", [MEMORY]),
    ("memory: held memory never released", "verify/memory.py", "self.held -= amount", "self.held -= 0", [MEMORY]),
    ("roialign pass: only the first node switched", "graphfix/passes/roialign.py",
     '            node.attribute.append(onnx.helper.make_attribute("sampling_ratio", ratio))\n',
     '            node.attribute.append(onnx.helper.make_attribute("sampling_ratio", ratio))\n        break\n',
     ["tests/graphfix/test_roialign.py"]),
    ("roialign pass: exact mode adaptive whatever the model sampled", "graphfix/passes/roialign.py",
     'ratio = 2 if roialign == "tensorpack" else exported.get(node.name, 0)',
     'ratio = 2 if roialign == "tensorpack" else 0', ["tests/graphfix/test_roialign.py"]),
    ("roialign: a fixed ratio sampled 2x2", "tf_import/ops/roi_align.py",
     "_fixed(features, boxes, indices, size, ratio) if ratio", "_fixed(features, boxes, indices, size, 2) if ratio",
     [ROI_ALIGN_OPS, "-k", "ratio1 or ratio3"]),
    ("calibrate: box deltas drawn whatever the weights", "d2tf/calibrate.py",
     "    return weights[2] / reference[2]", "    return 1.0", ["tests/test_calibrate.py", "-k", "proportion"]),
    ("supported: a foreign head reported as another architecture's", "export/supported.py",
     "    if registry is None or value in getattr(modeling, registry):", "    if True:",
     ["tests/test_export.py", "-k", "refused"]),
    ("supported: a tunable key compared with the reference", "export/supported.py",
     "        if key in _TUNABLE:", "        if key in _TUNABLE - {'MODEL.FPN.NORM'}:",
     ["tests/test_drawn_configs.py"]),
    ("model info: another version read", "core/model_info.py", "if version != VERSION:", "if False:",
     ["tests/test_model_info.py"]),
    ("model info: poolers left as dicts", "core/model_info.py", "if typing.get_origin(kind) is dict and value",
     "if False and value", ["tests/test_model_info.py"]),
    ("publish: a user's entry in OUT replaced", "d2tf/publish.py", "    if foreign:\n", "    if False:\n",
     ["tests/test_publish.py", "-k", "users"]),
    ("publish: any link in OUT taken for d2tf's", "d2tf/publish.py",
     "os.path.islink(path) and os.readlink(path) == os.path.join(HIDDEN, CURRENT, name)", "os.path.islink(path)",
     ["tests/test_publish.py", "-k", "users"]),
    ("publish: any name tf_import's manifest lists published", "d2tf/publish.py",
     "if unknown or contract.PB not in names:", "if False:", ["tests/test_publish.py", "-k", "manifest"]),
    ("parity: any unmatched detection let through", "tests/parity.py",
     "cand[\"scores\"].min(initial=np.inf)) + score_tol", "cand[\"scores\"].min(initial=np.inf)) + 1.0",
     ["tests/test_parity.py"]),
    ("parity: masks not compared", "tests/parity.py", "if mask_tol is not None and len(match.pairs):",
     "if False:", ["tests/test_parity.py"]),
    ("contract: serving boxes read as xmin, ymin", "core/contract.py", '["detection_boxes"][0][:, [1, 0, 3, 2]]',
     '["detection_boxes"][0][:, [0, 1, 2, 3]]', ["tests/test_contract.py"]),
    ("contract: pb labels taken for classes", "core/contract.py", 'outputs.pop("labels") - LABEL_BASE',
     'outputs.pop("labels")', ["tests/test_contract.py"]),
    ("class names: control characters kept", "core/class_names.py", " or not name.isprintable()", "",
     ["tests/test_class_names.py"]),
    ("class names: any count taken", "export/info.py", "if names is not None and len(names) != num_classes:",
     "if False:", ["tests/test_export.py", "-k", "class_names"]),
    ("npz: DC5 not refused", "tf_import/tensorpack_config.py",
     '    if arch.backbone == "DC5":', "    if False:",
     ["tests/test_tensorpack_config.py", "-k", "cannot_configure"]),
    ("npz: tuned anchor sizes not given to tensorpack", "tf_import/tensorpack_config.py",
     '"MODEL.ANCHOR_GENERATOR.SIZES": _anchor_sizes,', '"MODEL.ANCHOR_GENERATOR.SIZES": lambda value, arch: [],',
     ["tests/test_tensorpack_config.py", "-k", "flags_line"]),
    ("npz: a 4conv1fc box head given as tensorpack's default", "tf_import/tensorpack_config.py",
     '(4, 1): "fastrcnn_4conv1fc_head"', '(4, 1): "fastrcnn_2fc_head"',
     ["tests/test_tensorpack_config.py", "-k", "flags_line"]),
    ("npz: an RGB model's pixel statistics reversed", "tf_import/tensorpack_config.py",
     'return statistic[::-1] if info.input.format == "BGR" else statistic', "return statistic[::-1]",
     ["tests/test_tensorpack_config.py", "-k", "flags_line"]),
    ("npz: a tuned value tensorpack fixes let through", "tf_import/tensorpack_config.py",
     "        if isinstance(rule, str):\n", "        if isinstance(rule, str) and False:\n",
     ["tests/test_tensorpack_config.py", "-k", "fixes"]),
    ("chunks: a reduction over the boxes kept", "tf_import/roi_chunks.py",
     "all(a % in_rank != 0 for a in axes)", "True", [CHUNKS]),
    ("chunks: a constant with a box axis of its own kept", "tf_import/roi_chunks.py",
     "constants[name].ndim < rank or constants[name].shape[0] == 1", "True", [CHUNKS]),
    ("chunks: a value read by a loop body not an output", "tf_import/roi_chunks.py",
     "names |= enclosing_reads(attr.g)", "pass", [CHUNKS]),
    ("chunks: a transposed Gemm kept", "tf_import/roi_chunks.py", ' and not attrs.get("transA", 0)', "", [CHUNKS]),
    ("chunks: values computed outside read inside", "tf_import/roi_chunks.py",
     "if any(name not in constants for name in others):", "if False:", [CHUNKS]),
    ("chunks: a chunk's batch indices misaligned", "tf_import/translate.py",
     "roi_align.input[2]: Value(batch[start:stop])", "roi_align.input[2]: Value(batch[0:stop - start])",
     [ROI_ALIGN_OPS, "-k", "chunks"]),
    ("roialign: empty boxes not zeroed", "tf_import/ops/roi_align.py",
     " * tf.cast(tf.reduce_all(grid > 0), tf.float32)", "", [ROI_ALIGN_OPS, "-k", "empty_box"]),
    ("photos: EXIF orientation ignored", "evaluate/preprocess.py", "ImageOps.exif_transpose(image).convert(",
     "image.convert(", [PHOTOS, "-k", "upright"]),
    ("photos: channels in RGB order for a BGR model", "evaluate/preprocess.py",
     'image[:, :, ::-1] if input_format == "BGR" else image', "image", [PHOTOS, "-k", "png"]),
    ("photos: not resized for the graph", "verify/photos.py",
     "model_input(rgb, resize.min_size_test, resize.max_size_test,", "model_input(rgb, 0, 0,", [PHOTOS, "-k", "odd"]),
    ("photos: decoded whatever their size", "evaluate/preprocess.py",
     "    if image.width * image.height > MAX_PIXELS:", "    if False:", [PHOTOS, "-k", "unreadable"]),
    ("photos: larger than MAX_SIDE in the model", "verify/photos.py", "if max(image.shape[:2]) > MAX_SIDE:",
     "if False:", [PHOTOS, "-k", "max_side"]),
    ("resize: sizes rounded down", "evaluate/preprocess.py", "return int(newh + 0.5), int(neww + 0.5)",
     "return int(newh), int(neww)", [PHOTOS, "-k", "arithmetic"]),
    ("resize: the long side not capped", "evaluate/preprocess.py", "    if max(newh, neww) > max_size:",
     "    if False:", [PHOTOS, "-k", "arithmetic"]),
    ("memory: photos estimated at their own size, not the test resize's", "verify/run.py",
     "np.prod(resized_shape(*size, *resize))", "np.prod(size)", [MEMORY, "-k", "photos"]),
    ("memory: masks pasted at a photo's size not counted", "verify/run.py",
     "masks = info.test.detections_per_image if info.architecture.mask else 0", "masks = 0", [MEMORY, "-k", "photos"]),
    ("report: photos listed as synthetic", "verify/report.py", "_origin(files.get(key))", "_origin(None)",
     ["tests/test_verify_gate.py", "-k", "every_image"]),
]


def survives(row, work):
    """Whether the tests of `row` pass with its mutation applied in `work` (a copy of the checkout)."""
    name, path, old, new, tests = row
    target = os.path.join(work, path)
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    if text.count(old) != 1:
        raise SystemExit(f"mutation {name!r}: its text occurs {text.count(old)} times in {path}, not once: update it")
    with open(target, "w") as f:
        f.write(text.replace(old, new))
    try:
        env = dict(os.environ, PYTHONPATH=work, ARCHS="none")
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                                cwd=work, env=env, capture_output=True, text=True)
        if result.returncode not in (0, 1):  # 1: a test failed; others: pytest could not run them, which proves nothing
            last = (result.stdout + result.stderr).strip().splitlines()[-1:]
            raise SystemExit(f"mutation {name!r}: pytest exited {result.returncode} without running its tests: {last}")
        return result.returncode == 0
    finally:
        with open(target, "w") as f:
            f.write(text)


def main(argv):
    rows = [row for row in MUTATIONS if not argv or any(part in row[0] for part in argv)]
    survivors = []
    with tempfile.TemporaryDirectory(prefix="d2tf-mutation-") as work:
        # the checkout as it is: new files not yet added too, files deleted but not yet removed from git not
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
        for path in (p for p in listed.splitlines() if os.path.isfile(os.path.join(ROOT, p))):
            os.makedirs(os.path.dirname(os.path.join(work, path)) or work, exist_ok=True)
            shutil.copy2(os.path.join(ROOT, path), os.path.join(work, path))
        for row in rows:
            start = time.perf_counter()
            alive = survives(row, work)
            print(f"{'SURVIVED' if alive else 'caught  '} {row[0]} ({time.perf_counter() - start:.0f} s)", flush=True)
            if alive:
                survivors.append(row[0])
    print(f"{len(rows) - len(survivors)} of {len(rows)} mutations caught" +
          (f"; survivors: {', '.join(survivors)}" if survivors else ""))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
