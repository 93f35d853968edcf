"""verify.png: detectron2's and the pb's outputs drawn side by side on the same image: detections (an RPN's
proposals) as boxes labelled with their class and score, masks and semantic classes as translucent fills."""

import functools
import io
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.contract import as_detections, has_detections

MIN_SCORE, MAX_SHOWN = 0.5, 30  # beyond a few dozen boxes a picture shows nothing


def side_by_side(image_rgb, panels, skeleton=(), class_names=None):
    """PNG bytes: one copy of the HxWx3 RGB image per (title, outputs) panel, the outputs drawn on it; keypoints
    joined by `skeleton` (pairs of keypoint indices); labels by `class_names` where given, else by class id."""
    font = _font(max(11, min(image_rgb.shape[:2]) // 32))  # readable at the picture's size
    drawn = [_panel(image_rgb, title, dets, skeleton, class_names, font) for title, dets in panels]
    width, height = sum(p.width for p in drawn), max(p.height for p in drawn)
    canvas = Image.new("RGB", (width, height), "white")
    for i, panel in enumerate(drawn):
        canvas.paste(panel, (sum(p.width for p in drawn[:i]), 0))
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return buffer.getvalue()


def _panel(image_rgb, title, outputs, skeleton, class_names, font):
    image = Image.fromarray(np.clip(image_rgb, 0, 255).astype(np.uint8))
    if "sem_seg" in outputs:
        image = _tint_classes(image, outputs["sem_seg"].argmax(0))
    detects = has_detections(outputs)
    dets = as_detections(outputs) if detects else {"scores": np.zeros(0)}
    shown = [i for i in np.argsort(-dets["scores"], kind="stable")[:MAX_SHOWN] if dets["scores"][i] >= MIN_SCORE]
    for i in shown:
        color = _color(int(dets["classes"][i]))
        if "masks" in dets:
            image = _tint(image, dets["boxes"][i], dets["masks"][i], color)
        draw = ImageDraw.Draw(image)
        draw.rectangle([float(v) for v in dets["boxes"][i]], outline=color, width=2)
        if "keypoints" in dets:
            _keypoints(draw, dets["keypoints"][i], skeleton, color)
        cls = int(dets["classes"][i])
        _label(draw, dets["boxes"][i][:2], f"{class_names[cls] if class_names else cls} {dets['scores'][i]:.2f}",
               color, font)
    header = Image.new("RGB", (image.width, font.size + 8), "white")
    caption = f"{len(shown)} with score >= {MIN_SCORE}" if detects else "per-pixel classes tinted"
    ImageDraw.Draw(header).text((4, 4), f"{title}: {caption}", fill="black", font=font)
    panel = Image.new("RGB", (image.width, image.height + header.height), "white")
    panel.paste(header, (0, 0))
    panel.paste(image, (0, header.height))
    return panel


def _label(draw, corner, text, color, font):
    """`text` in white on a box of the detection's colour, inside the detection's top-left `corner`."""
    x, y = float(corner[0]) + 1, float(corner[1]) + 1
    draw.rectangle(draw.textbbox((x, y), text, font=font), fill=color)
    draw.text((x, y), text, fill="white", font=font)


@functools.lru_cache()
def _font(size):
    """DejaVu Sans at `size` px, from matplotlib's data (PIL's built-in font has one small size)."""
    import matplotlib

    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf"), size)


def _keypoints(draw, keypoints, skeleton, color):
    """One instance's keypoints ([K, 3]: x, y, score) as dots, joined by the skeleton's lines."""
    for a, b in skeleton:
        draw.line([tuple(map(float, keypoints[a, :2])), tuple(map(float, keypoints[b, :2]))], fill=color, width=1)
    for x, y, _ in keypoints:
        draw.ellipse([float(x) - 2, float(y) - 2, float(x) + 2, float(y) + 2], fill="white", outline=color)


def _tint_classes(image, classes):
    """Blends each pixel's class colour into it."""
    palette = np.array([_color(c) for c in range(int(classes.max(initial=0)) + 1)], np.float32)
    pixels = 0.55 * np.asarray(image, np.float32) + 0.45 * palette[classes]
    return Image.fromarray(pixels.astype(np.uint8))


def _tint(image, box, mask, color):
    """Blends `color` into the pixels where the box-relative mask, resized to the box, exceeds 0.5."""
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, image.width), min(y2, image.height)
    if x2 <= x1 or y2 <= y1:
        return image
    inside = np.asarray(Image.fromarray(mask.astype(np.float32)).resize((x2 - x1, y2 - y1), Image.BILINEAR)) > 0.5
    pixels = np.asarray(image).copy()
    region = pixels[y1:y2, x1:x2]
    region[inside] = (0.55 * region[inside] + 0.45 * np.array(color)).astype(np.uint8)
    return Image.fromarray(pixels)


def _color(cls):
    """A stable, distinct colour per class."""
    rng = np.random.default_rng(cls)
    return tuple(int(v) for v in rng.integers(40, 230, 3))
