"""tf_import/ops/gather_scatter.py: Gather, GatherND, ScatterND, NonZero, OneHot."""

import numpy as np

from tests.tf_import.op_cases import EMPTY_INDICES, draws, handler_tests, ints, one_op

floats = draws(3541).floats

CASES = [
    one_op("gather_negative_indices", "Gather", {"x": floats(5, 3), "i": ints([-1, 0, 2, -5])}),
    one_op("gather_axis1_2d_indices", "Gather", {"x": floats(2, 4, 3), "i": ints([[0, 3], [-2, 1]])}, axis=1),
    one_op("gather_scalar_index_negative_axis", "Gather", {"x": floats(2, 4, 3)}, {"i": ints(-1)}, axis=-1),
    one_op("gather_empty_indices", "Gather", {"x": floats(5, 3), "i": EMPTY_INDICES}),
    one_op("gather_empty_data", "Gather", {"x": np.zeros((0, 3), np.float32), "i": ints([2, 0])}, axis=1),
    one_op("gather_empty_data_and_indices", "Gather", {"x": np.zeros((0, 3), np.float32), "i": EMPTY_INDICES}),
    one_op("gather_nd_negative", "GatherND", {"x": floats(2, 3, 4), "i": ints([[0, 1], [1, -1], [-2, 0]])}),
    one_op("gather_nd_batch_dims", "GatherND", {"x": floats(2, 3, 4), "i": ints([[[1]], [[-3]]])}, batch_dims=1),
    one_op("scatter_nd_negative", "ScatterND", {"x": floats(4, 3), "i": ints([[1], [-1]]), "u": floats(2, 3)},
           fixed={"i": (None, 1)}),  # TFLite's form needs the index depth
    one_op("scatter_nd_no_updates", "ScatterND",  # an FPN level without boxes
           {"x": floats(4, 3), "i": np.zeros((0, 1), np.int64), "u": np.zeros((0, 3), np.float32)},
           fixed={"i": (None, 1)}),
    one_op("scatter_nd_add_refused", "ScatterND", {"x": floats(4, 3), "i": ints([[1]]), "u": floats(1, 3)},
           reduction="add", refused="reduction=add"),
    one_op("non_zero", "NonZero", {"x": np.array([[0, 1.5, 0], [2, 0, -1]], np.float32)}),
    one_op("non_zero_empty", "NonZero", {"x": np.zeros((0, 3), np.float32)}),
    one_op("non_zero_none", "NonZero", {"x": np.zeros((2, 2), np.int64)}),
    one_op("one_hot", "OneHot", {"i": ints([-1, 0, 2, 5])},
           {"depth": ints([4]), "values": np.array([0, 5], np.float32)}),
    one_op("one_hot_axis0", "OneHot", {"i": ints([[1, -4], [3, 0]], np.int32)},
           {"depth": np.float32(4), "values": np.float32([-1, 1])}, axis=0),
]

test_handler, test_handler_in_tflite = handler_tests(CASES)
