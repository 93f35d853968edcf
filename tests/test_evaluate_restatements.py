"""evaluate's restatements of detectron2's test-time pipeline (evaluate/preprocess.py, evaluate/postprocess.py)
against detectron2's own functions, on random inputs with fixed seeds. The restatements exist so that evaluate's
process needs no PyTorch and both runtimes' outputs go through the same steps; these tests keep them detectron2's."""

import numpy as np
import torch
from detectron2.data.detection_utils import read_image
from detectron2.data.transforms import ResizeShortestEdge
from detectron2.layers.mask_ops import paste_masks_in_image
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, Instances
from PIL import Image

from evaluate.postprocess import paste_mask, to_original
from evaluate.preprocess import load_image, output_shape, resize

# An interpolated mask value this close to the 0.5 threshold is a tie that float32 rounding decides.
TIE = 1e-6


def random_limits(rng, smallest, largest):
    """(MIN_SIZE_TEST, MAX_SIZE_TEST), the max often close enough to the min to cap the long side."""
    min_size = int(rng.integers(smallest, largest))
    return min_size, int(min_size * rng.uniform(1, 2.5))


def resize_is_capped(height, width, min_size, max_size):
    """Whether the long side would exceed max_size at min_size: the case where the max decides the scale."""
    return max(height, width) * min_size / min(height, width) > max_size


def test_resize_shortest_edge_output_shape():
    rng = np.random.default_rng(0)
    cases = [(int(rng.integers(1, 2000)), int(rng.integers(1, 2000)), *random_limits(rng, 1, 1200))
             for _ in range(2000)]
    cases += [(int(rng.integers(1, 2000)), int(rng.integers(1, 2000)), 800, 1333) for _ in range(500)]
    assert sum(resize_is_capped(*case) for case in cases) > 500
    for case in cases:
        assert output_shape(*case) == ResizeShortestEdge.get_output_shape(*case), case


def test_resize_shortest_edge_image():
    """The resized uint8 pixels, incl. MIN_SIZE_TEST 0 (no resize) and long sides capped by MAX_SIZE_TEST."""
    rng = np.random.default_rng(1)
    capped = 0
    for i in range(60):
        image = rng.integers(0, 256, (*rng.integers(8, 300, 2), 3), dtype=np.uint8)
        min_size, max_size = (0, 1333) if i % 10 == 0 else random_limits(rng, 8, 200)
        capped += bool(min_size) and resize_is_capped(*image.shape[:2], min_size, max_size)
        expected = ResizeShortestEdge(min_size, max_size).get_transform(image).apply_image(image)
        np.testing.assert_array_equal(resize(image, min_size, max_size), expected)
    assert capped >= 10


def test_load_image_is_detectron2_read_and_resize(tmp_path):
    """The whole preparation: PIL read, EXIF orientation, RGB conversion of other modes, resize, BGR, float32."""
    rng = np.random.default_rng(2)
    written = []
    for orientation in range(1, 9):  # a 30x50 image turned by each EXIF orientation
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"orientation{orientation}.jpg"
        Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).save(path, exif=exif)
        written.append(path)
    for mode in ("L", "RGBA", "P"):
        path = tmp_path / f"{mode}.png"
        Image.fromarray(rng.integers(0, 256, (40, 25, 3), dtype=np.uint8)).convert(mode).save(path)
        written.append(path)
    for path in written:
        for min_size, max_size in [(0, 1333), (64, 100), (100, 120)]:
            original = read_image(str(path), format="BGR")
            expected = ResizeShortestEdge(min_size, max_size).get_transform(original).apply_image(original)
            image, size = load_image(path, min_size, max_size)
            assert size == original.shape[:2], path
            assert image.dtype == np.float32
            np.testing.assert_array_equal(image, expected.astype(np.float32), err_msg=f"{path} at {min_size}")


def postprocess_boxes(rng, n, height, width):
    """Boxes in a height x width image: inside it, partly and wholly outside it, and inverted (empty)."""
    x0, y0 = rng.uniform(-0.5, 1.5, n) * width, rng.uniform(-0.5, 1.5, n) * height
    x1, y1 = x0 + rng.uniform(-0.1, 0.8, n) * width, y0 + rng.uniform(-0.1, 0.8, n) * height
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.float32)


def test_detector_postprocess():
    """Boxes scaled from the resized image to the original (random, unequal x and y factors), clipped, empty
    ones dropped."""
    rng = np.random.default_rng(3)
    kept = dropped = 0
    for _ in range(50):
        size = tuple(int(v) for v in rng.integers(20, 2000, 2))
        resized = tuple(int(v) for v in rng.integers(20, 1400, 2))
        boxes = postprocess_boxes(rng, 20, *resized)
        instances = Instances(resized, pred_boxes=Boxes(torch.tensor(boxes)), index=torch.arange(len(boxes)))
        expected = detector_postprocess(instances, *size)
        restated, keep = to_original(boxes, size, resized)
        np.testing.assert_array_equal(np.flatnonzero(keep), expected.index.numpy())
        np.testing.assert_allclose(restated[keep], expected.pred_boxes.tensor.numpy(), rtol=0, atol=1e-4)
        kept, dropped = kept + keep.sum(), dropped + (~keep).sum()
    assert kept >= 300 and dropped >= 100


def paste_boxes(rng, height, width):
    """One box of each kind the test covers, in a height x width image."""
    x, y = rng.uniform(0, width - 1), rng.uniform(0, height - 1)
    xs, ys = np.sort(rng.uniform(0, width, 2)), np.sort(rng.uniform(0, height, 2))
    return np.float32([
        [x, y, x + rng.uniform(0.05, 1), y + rng.uniform(0.05, 1)],  # sub-pixel
        [xs[0], ys[0], xs[1], ys[1]],  # inside
        [-rng.uniform(0, 50), -rng.uniform(0, 50), width + rng.uniform(0, 50), height + rng.uniform(0, 50)],  # large
        [-rng.uniform(0, 30), -rng.uniform(0, 30), rng.uniform(1, width), rng.uniform(1, height)],  # partly outside
        [0, 0, rng.uniform(1, width), rng.uniform(1, height)],  # touching the top and left edges
        [x, y, width, height],  # touching the bottom and right edges
    ])


def probability_masks(rng, n, size=28):
    """Uniform noise, smooth blobs (as mask heads predict) and quarters (many interpolated values exactly 0.5)."""
    kinds = [
        lambda: rng.random((size, size)),
        lambda: 1 / (1 + np.exp(-np.kron(rng.normal(0, 3, (size // 4, size // 4)), np.ones((4, 4))))),
        lambda: rng.integers(0, 5, (size, size)) / 4,
    ]
    return np.stack([kinds[i % len(kinds)]() for i in range(n)]).astype(np.float32)


def test_paste_masks_in_image():
    """Binary masks pasted at threshold 0.5. grid_sample adds its bilinear products in another order than the
    restatement, so a value within float32 rounding of 0.5 may fall on the other side: a pixel may differ only
    if it is such a tie (detectron2's value within TIE of 0.5), and hardly any may."""
    rng = np.random.default_rng(4)
    differing = union = pasted_boxes = 0
    for _ in range(34):
        height, width = (int(v) for v in rng.integers(16, 300, 2))
        boxes = paste_boxes(rng, height, width)
        masks = probability_masks(rng, len(boxes))

        def detectron2(threshold):
            return paste_masks_in_image(torch.from_numpy(masks), Boxes(torch.from_numpy(boxes)), (height, width),
                                        threshold).numpy()

        expected, below_ties, above_ties = detectron2(0.5), detectron2(0.5 - TIE), detectron2(0.5 + TIE)
        for i, (mask, box) in enumerate(zip(masks, boxes)):
            restated = paste_mask(mask, box, height, width)
            assert not np.any(restated & ~below_ties[i]) and not np.any(above_ties[i] & ~restated), box
            differing += np.count_nonzero(restated != expected[i])
            union += np.count_nonzero(restated | expected[i])
        pasted_boxes += len(boxes)
    assert pasted_boxes >= 200
    assert differing <= 1e-4 * union, f"{differing} of {union} pixels differ"
