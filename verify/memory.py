"""How much memory verify's runtimes take, so that the ones it runs side by side fit in the machine's.

A runtime's peak is estimated from what it holds (`estimate`): its framework once loaded, its copies of the
weights, the backbone's activations (bytes per pixel of the largest image it runs) and the per-box part: a C4 model
runs res5 on the pooled features of every proposal, 0.8 MB a proposal at 1000 proposals. On photos as they come, a
mask model's masks are pasted at the photo's size, one per detection. The factors are measured
peaks over those parts, rounded up (docs/pipeline.md, "verify's memory"). `Budget` then starts a runtime only when
its estimate fits beside the estimates of those running."""

import contextlib
import dataclasses
import threading

import numpy as np
import onnx

GIB = 1 << 30


@dataclasses.dataclass(frozen=True)
class Factors:
    base: float  # bytes of the process once its framework is loaded
    weights: float  # copies of the weights it holds
    pixel: float  # bytes per pixel of the largest image
    pooled: float  # copies of the pooled features of every proposal (pooled_bytes)
    pasted: float = 0  # bytes per photo pixel and detection of masks pasted at the photo's size


FACTORS = {
    "detectron2": Factors(1.0 * GIB, 2, 2048, 2, pasted=2),
    "onnxruntime": Factors(0.5 * GIB, 2, 1536, 1.5),
    "model.pb": Factors(1.0 * GIB, 3, 4096, 8),
    "saved_model": Factors(1.0 * GIB, 3, 4096, 8, pasted=12),
    "tensorpack": Factors(1.0 * GIB, 3, 4096, 8),
    # TFLite runs the per-box nodes a chunk of boxes at a time (tf_import/roi_chunks.py): their part is bounded.
    "model.tflite": Factors(1.5 * GIB, 2, 2048, 0),
}


def estimate(runtime, weights, pixels, pooled, pasted=0):
    """Bytes `runtime` is expected to peak at: `weights` bytes of weights, images of up to `pixels` pixels (as the
    model runs them), `pooled` bytes of pooled features (pooled_bytes) and `pasted` photo pixels times detections of
    masks pasted at a photo's size."""
    f = FACTORS[runtime]
    return int(f.base + f.weights * weights + f.pixel * pixels + f.pooled * pooled + f.pasted * pasted)


def weight_bytes(model):
    """Bytes of the graph's initializers."""
    return sum(int(np.prod(init.dims)) * onnx.helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
               for init in model.graph.initializer)


def pooled_bytes(model, proposals):
    """Bytes of the largest RoiAlign's output for `proposals` boxes (0 without RoiAlign), from ONNX shape inference:
    its channels and output size are static."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type for v in [*inferred.graph.value_info, *inferred.graph.output]}
    per_box = [int(np.prod([d.dim_value for d in types[n.output[0]].shape.dim[1:]])) * 4
               for n in model.graph.node if n.op_type == "RoiAlign" and n.output[0] in types]
    return max(per_box, default=0) * proposals


def available():
    """Bytes of memory the kernel says can be given to new processes without swapping (MemAvailable)."""
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024


class Budget:
    """Memory handed out to runtimes that run side by side: `hold(amount)` waits until `amount` fits beside what is
    held, or nothing is (a runtime larger than the whole budget still runs, alone)."""

    def __init__(self, total):
        self.total, self.held = total, 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, amount, waiting=None):
        """Holds `amount` while the block runs; `waiting()` is called once if it must wait first."""
        with self._changed:
            if not self._fits(amount) and waiting:
                waiting()
            self._changed.wait_for(lambda: self._fits(amount))
            self.held += amount
        try:
            yield
        finally:
            with self._changed:
                self.held -= amount
                self._changed.notify_all()

    def _fits(self, amount):
        return self.held == 0 or self.held + amount <= self.total
