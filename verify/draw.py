"""verify.png: detectron2's and the pb's outputs drawn side by side on the same image: detections (an RPN's
proposals) as boxes, masks and semantic classes tinted."""

import io

import numpy as np
from PIL import Image, ImageDraw

from core.contract import as_detections, has_detections

MIN_SCORE, MAX_SHOWN = 0.5, 30  # beyond a few dozen boxes a picture shows nothing


def side_by_side(image_bgr, panels, skeleton=()):
    """PNG bytes: one copy of the image per (title, outputs) panel, the outputs drawn on it; keypoints joined by
    `skeleton` (pairs of keypoint indices)."""
    drawn = [_panel(image_bgr, title, dets, skeleton) for title, dets in panels]
    width, height = sum(p.width for p in drawn), max(p.height for p in drawn)
    canvas = Image.new("RGB", (width, height), "white")
    for i, panel in enumerate(drawn):
        canvas.paste(panel, (sum(p.width for p in drawn[:i]), 0))
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return buffer.getvalue()


def _panel(image_bgr, title, outputs, skeleton):
    image = Image.fromarray(np.clip(image_bgr[:, :, ::-1], 0, 255).astype(np.uint8))
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
        draw.text((float(dets["boxes"][i][0]) + 2, float(dets["boxes"][i][1]) + 1),
                  f"{int(dets['classes'][i])}:{dets['scores'][i]:.2f}", fill=color)
    header = Image.new("RGB", (image.width, 18), "white")
    caption = f"{len(shown)} with score >= {MIN_SCORE}" if detects else "per-pixel classes tinted"
    ImageDraw.Draw(header).text((4, 3), f"{title}: {caption}", fill="black")
    panel = Image.new("RGB", (image.width, image.height + header.height), "white")
    panel.paste(header, (0, 0))
    panel.paste(image, (0, header.height))
    return panel


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
