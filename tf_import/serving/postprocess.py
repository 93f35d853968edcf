"""detectron2's detector_postprocess in TensorFlow: detections of the resized image back on the original one.

Boxes are scaled by original / resized size (the scale in float64, applied in float32, as torch does with a Python
float), clipped to the image, and those left empty dropped; masks are pasted at image size and thresholded as
paste_masks_in_image does on the CPU: a bilinear sample (grid_sample, zero padding, not align_corners) of the box's
M x M mask at each pixel centre. detectron2 samples only within the box widened by one pixel; every pixel centre
beyond that maps more than half a mask pixel outside the mask, where the sample is below 0.5 of the edge value, so
the threshold leaves it 0 either way and the whole image is sampled here.
"""

import tensorflow as tf

MASK_THRESHOLD = 0.5  # detector_postprocess's default


def scale_boxes(boxes, resized_hw, original_hw):
    """[N, 4] x1y1x2y2 in the resized image -> in the original one, clipped; and the keep mask (non-empty)."""
    (resized_h, resized_w), (height, width) = resized_hw, original_hw
    scale_x = tf.cast(tf.cast(width, tf.float64) / tf.cast(resized_w, tf.float64), tf.float32)
    scale_y = tf.cast(tf.cast(height, tf.float64) / tf.cast(resized_h, tf.float64), tf.float32)
    boxes = boxes * tf.stack([scale_x, scale_y, scale_x, scale_y])
    limits = tf.cast(tf.stack([width, height, width, height]), tf.float32)
    boxes = tf.clip_by_value(boxes, 0.0, limits)
    keep = (boxes[:, 2] - boxes[:, 0] > 0) & (boxes[:, 3] - boxes[:, 1] > 0)
    return boxes, keep


def paste_masks(masks, boxes, height, width):
    """[N, M, M] mask probabilities in their boxes ([N, 4], image pixels) -> uint8 [N, height, width], 1 where the
    pasted probability is >= MASK_THRESHOLD."""
    x0, y0, x1, y1 = tf.unstack(boxes, axis=1)
    side = tf.shape(masks)[1]
    padded = tf.pad(masks, [[0, 0], [1, 1], [1, 1]])  # grid_sample's zero padding, as real pixels
    along_x = _sample(padded, x0, x1, width, side, axis=2)  # [N, M + 2, width]
    pasted = _sample(along_x, y0, y1, height, side, axis=1)  # [N, height, width]
    return tf.cast(pasted >= MASK_THRESHOLD, tf.uint8)


def _sample(values, start, end, size, side, axis):
    """Linear interpolation of `values` ([N, A, B]: masks padded by one zero on each side) along `axis` at each of
    `size` pixel centres, mapped into each box as grid_sample maps them: g = (x + 0.5 - x0) / (x1 - x0) * 2 - 1,
    then ((g + 1) * M - 1) / 2 in mask pixels. A neighbour off the mask reads the padding's zero."""
    centres = tf.range(size, dtype=tf.float32) + 0.5
    grid = (centres[None, :] - start[:, None]) / (end - start)[:, None] * 2 - 1
    position = ((grid + 1) * tf.cast(side, tf.float32) - 1) / 2
    low = tf.floor(position)
    high_weight = position - low
    last = tf.cast(side + 1, tf.float32)

    def taken(index):  # padded index: mask pixel + 1
        return tf.gather(values, tf.cast(tf.clip_by_value(index + 1, 0, last), tf.int32), axis=axis, batch_dims=1)

    def spread(weight):  # [N, size] against the gathered [N, size, B] or [N, A, size]
        return weight[:, :, None] if axis == 1 else weight[:, None, :]

    return spread(1 - high_weight) * taken(low) + spread(high_weight) * taken(low + 1)
