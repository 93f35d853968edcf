"""verify's photos (`--verify-images`): read as detectron2's read_image reads
them (EXIF orientation), resized as its test resize does, refused in one line when they cannot be; and on a converted
model, a user's photos verified by every stage and the SavedModel."""

import os
import struct
import zlib

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from core import D2TFError, contract, zoo
from core.files import HIDDEN
from core.synthetic import synthetic_image
from evaluate.preprocess import MAX_PIXELS, output_shape
from tests.model_infos import model_info
from tests.processes import run_python
from verify.photos import check_photos, read_photos
from verify.report import figures_of

SAMPLE_PHOTO = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)  # a real jpg the packages ship
ORIENTATION = 0x0112  # the EXIF tag detectron2's read_image turns images upright by
# A 2x3 image's pixels, numbered, and where each EXIF orientation puts them once upright (the EXIF standard's
# meaning: 6 is rotated 90 degrees clockwise to be viewed, 8 counter-clockwise, 5 and 7 mirrored across a diagonal).
STORED = [[1, 2, 3], [4, 5, 6]]
UPRIGHT = {1: STORED, 2: [[3, 2, 1], [6, 5, 4]], 3: [[6, 5, 4], [3, 2, 1]], 4: [[4, 5, 6], [1, 2, 3]],
           5: [[1, 4], [2, 5], [3, 6]], 6: [[4, 1], [5, 2], [6, 3]], 7: [[6, 3], [5, 2], [4, 1]],
           8: [[3, 6], [2, 5], [1, 4]]}


def _rgb(numbers):
    """An HxWx3 uint8 image of numbered pixels: number n is (10n, 10n + 1, 10n + 2), so the channels' order shows."""
    return np.array(numbers, np.uint8)[:, :, None] * 10 + np.arange(3, dtype=np.uint8)


def _save(path, rgb, orientation=None, **options):
    exif = Image.Exif()
    if orientation:
        exif[ORIENTATION] = orientation
    Image.fromarray(rgb).save(path, exif=exif, **options)
    return path


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_a_png_is_turned_upright_as_its_exif_orientation_says(tmp_path, orientation):
    path = _save(tmp_path / "photo.png", _rgb(STORED), orientation)
    (photo,) = read_photos([path], model_info(resize={"min_size_test": 0}))
    np.testing.assert_array_equal(photo.rgb, _rgb(UPRIGHT[orientation]))
    np.testing.assert_array_equal(photo.image, _rgb(UPRIGHT[orientation])[:, :, ::-1].astype(np.float32))
    assert photo.image.dtype == np.float32, "the graph's input: float32 BGR"


def test_a_model_of_rgb_input_takes_the_photo_in_rgb_order(tmp_path):
    path = _save(tmp_path / "photo.png", _rgb(STORED))
    (photo,) = read_photos([path], model_info(resize={"min_size_test": 0}, input={"format": "RGB"}))
    np.testing.assert_array_equal(photo.image, _rgb(STORED).astype(np.float32))


def test_a_jpg_is_turned_upright_as_its_exif_orientation_says(tmp_path):
    """JPEG changes pixels: the expected upright image is the stored pixels (read without the tag) turned by hand."""
    stored = np.repeat(np.repeat(_rgb(STORED), 8, 0), 8, 1)  # 16x24: one 8x8 JPEG block per numbered pixel
    path = _save(tmp_path / "photo.jpg", stored, 6, quality=95)
    with Image.open(path) as image:
        as_stored = np.asarray(image.convert("RGB"))
    (photo,) = read_photos([path], model_info(resize={"min_size_test": 0}))
    np.testing.assert_array_equal(photo.rgb, np.rot90(as_stored, -1))  # 6: a quarter turn clockwise
    assert photo.rgb.shape == (24, 16, 3)


def test_odd_sizes_are_resized_as_detectron2s_test_resize_and_keyed_by_file_name(tmp_path):
    """301x453 at MIN_SIZE_TEST 64: the short side to 64, the long one 453 * 64 / 301 = 96.3 -> 96. Turned by its
    orientation first, the same file is 453x301: 96x64."""
    rgb = np.random.default_rng(0).integers(0, 256, (301, 453, 3), dtype=np.uint8)
    paths = [_save(tmp_path / "odd size.png", rgb), _save(tmp_path / "turned.jpg", rgb, 8)]
    photos = read_photos(paths, model_info(resize={"min_size_test": 64, "max_size_test": 100}))
    assert [(p.key, p.rgb.shape, p.image.shape) for p in photos] == [
        ("image1_odd_size", (301, 453, 3), (64, 96, 3)), ("image2_turned", (453, 301, 3), (96, 64, 3))]


def test_the_resize_arithmetic():
    """ResizeShortestEdge's size, by hand: the short side to MIN_SIZE_TEST, the long one scaled alike, unless that
    passes MAX_SIZE_TEST, which then bounds the long side; rounded half up."""
    assert output_shape(600, 512, 800, 1333) == (938, 800)  # 600 * 800 / 512 = 937.5
    assert output_shape(3000, 4000, 800, 1333) == (800, 1067)  # 4000 * 800 / 3000 = 1066.7
    assert output_shape(1000, 3000, 800, 1333) == (444, 1333)  # 2400 > 1333: 800 * 1333 / 2400 = 444.3
    assert output_shape(600, 512, 256, 480) == (300, 256)  # the suite's test resize
    assert output_shape(301, 453, 64, 100) == (64, 96)


def _png_header(path, width, height):
    """A PNG of width x height whose pixel data is missing: only its header can be read."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))
    return path


def test_unreadable_files_are_refused_in_one_line(tmp_path):
    """The large files have a header and no pixels: refused from the header, before decoding was tried."""
    (tmp_path / "notes.jpg").write_text("not a picture")
    big = f"more than {MAX_PIXELS / 1e6:.0f} megapixels, which d2tf does not decode (an image is read whole before " \
          "it is resized): give a smaller copy"
    cases = {tmp_path / "missing.jpg": "no such file", tmp_path / "notes.jpg": "not an image (Pillow cannot read it)",
             _png_header(tmp_path / "9000x9000.png", 9000, 9000): big,  # beyond d2tf's limit, below PIL's
             _png_header(tmp_path / "20000x20000.png", 20000, 20000): big,  # PIL refuses it itself
             _png_header(tmp_path / "header.png", 40, 30): "cannot decode it (cannot load this image)"}
    for path, reason in cases.items():
        for read in (check_photos, lambda paths: read_photos(paths, model_info())):
            with pytest.raises(D2TFError) as e:
                read([path])
            assert str(e.value) == f"{path}: {reason}"


def test_convert_refuses_a_missing_photo_before_its_stages_run(tmp_path):
    weights = tmp_path / "model.pkl"
    weights.write_bytes(b"weights")
    result = run_python("-m", "d2tf", "convert", "--config", zoo.DEFAULT_EXAMPLE, "--weights", weights, "--out",
                        tmp_path / "out", "--verify-images", tmp_path / "missing.jpg")
    assert (result.returncode, result.stderr.strip().splitlines()[-1]) == (
        2, f"error: {tmp_path / 'missing.jpg'}: no such file")
    assert not (tmp_path / "out").exists(), "before export: OUT not even created"


def test_a_photo_the_model_would_take_larger_than_max_side_is_refused(tmp_path):
    """A config without a test resize takes a photo at its own size."""
    path = _save(tmp_path / "wide.png", np.zeros((10, 2100, 3), np.uint8))
    read_photos([path], model_info())  # resized to 800 x 1333 at most
    with pytest.raises(D2TFError) as e:
        read_photos([path], model_info(resize={"min_size_test": 0}))
    assert str(e.value) == (f"{path}: 10x2100 enters the model at 10x2100 (INPUT.MIN_SIZE_TEST 0, MAX_SIZE_TEST 1333), "
                            "more than 2048 a side: give a smaller copy")


def test_a_real_photograph_reads_at_its_test_size():
    """matplotlib's sample photo (600x512), as a user's jpg."""
    (photo,) = read_photos([SAMPLE_PHOTO], model_info(resize={"min_size_test": 256, "max_size_test": 480}))
    assert (photo.key, photo.rgb.shape, photo.image.shape) == ("image1_grace_hopper", (600, 512, 3), (300, 256, 3))


@pytest.mark.architecture(zoo.DEFAULT_EXAMPLE)
def test_verify_images_on_a_converted_model(pipeline, tmp_path):
    """`d2tf verify --verify-images` with a png of odd size turned by its EXIF orientation and a jpg: every stage and
    the SavedModel run on both and pass the gate, and report.md lists them. The photos are synthetic scenes, which
    the suite's calibrated random checkpoints detect things in; the build's models are linked, not copied (its
    report.md and verify.png not: verify writes through a link)."""
    p = pipeline(zoo.DEFAULT_EXAMPLE)
    out = tmp_path / "out"
    out.mkdir()
    for name in set(os.listdir(p.out)) - {HIDDEN, contract.REPORT, contract.VERIFY_PNG}:
        (out / name).symlink_to(os.path.realpath(p.out / name))
    scene = np.round(synthetic_image(301, 453, seed=1)[:, :, ::-1]).astype(np.uint8)
    png = _save(tmp_path / "odd.png", np.ascontiguousarray(np.rot90(scene, 1)), 6)  # upright: the scene
    jpg = _save(tmp_path / "scene.jpg", np.round(synthetic_image(333, 411, seed=2)[:, :, ::-1]).astype(np.uint8),
                quality=95)
    result = run_python("-m", "d2tf", "verify", "--out", out, "--sizes", "64x64", "--verify-images", png, jpg)
    assert result.returncode == 0, result.stderr[-3000:]
    text = (out / "report.md").read_text()
    figures = figures_of(text)
    assert figures["files"] == {"image1_odd": {"path": str(png), "size": [301, 453]},
                                "image2_scene": {"path": str(jpg), "size": [333, 411]}}
    assert {key: figures["images"][key] for key in figures["files"]} == {"image1_odd": [256, 385],
                                                                         "image2_scene": [256, 316]}
    assert figures["detections"]["image1_odd"] >= 5 and figures["detections"]["image2_scene"] >= 5, figures
    served = figures["serving"][0]
    assert {key: served["photos"][key] for key in figures["files"]} == {"image1_odd": [301, 453],
                                                                        "image2_scene": [333, 411]}
    assert served["detections"]["image1_odd"] >= 5 and not served["failures"], served
    assert not figures["failures"], figures["failures"]
    assert f"| image1_odd | `{png}` (301x453 as read) | every stage | 256x385 |" in text
