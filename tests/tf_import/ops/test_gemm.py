"""tf_import/ops/gemm.py: Gemm, MatMul."""

from tests.tf_import.op_cases import Case, draws, handler_tests, node, one_op

floats = draws(2994).floats

CASES = [
    one_op("gemm_transb_alpha_beta", "Gemm", {"a": floats(3, 4)}, {"b": floats(5, 4), "c": floats(5)}, transB=1,
           alpha=0.5, beta=2.0),
    one_op("gemm_run_time_b", "Gemm", {"a": floats(3, 4), "b": floats(5, 4), "c": floats(3, 5)}, transB=1),
    one_op("gemm_transa_refused", "Gemm", {"a": floats(4, 3), "b": floats(4, 5)}, transA=1, refused="transA=1"),
    one_op("matmul_2d", "MatMul", {"a": floats(3, 4), "b": floats(4, 5)}),
    # the deformable convolution's: one product per group, the weights a constant
    Case("matmul_batched_constant", [node("MatMul", ["w", "x"])], {"x": floats(2, 4, 6)}, {"w": floats(2, 3, 4)}),
    one_op("matmul_broadcast_batch", "MatMul", {"a": floats(2, 1, 3, 4), "b": floats(5, 4, 2)}),
    one_op("matmul_vector_refused", "MatMul", {"a": floats(3, 4), "b": floats(4)}, refused="a vector"),
]

test_handler, test_handler_in_tflite = handler_tests(CASES)
