"""tf_import/translate.py: the Translator's own refusals."""

from tests.tf_import.op_cases import Case, X, handler_tests, ints, node, one_op

CASES = [
    one_op("opset10_refused", "Relu", {"x": X}, opset=10, refused="imports ONNX opset 10 (ai.onnx); d2tf translates "
                                                                  "opsets 11 to 17"),
    one_op("opset18_refused", "Relu", {"x": X}, opset=18, refused="imports ONNX opset 18"),
    one_op("no_default_opset_refused", "Relu", {"x": X}, opset=None, refused="imports no default-domain"),
    one_op("unknown_op_refused", "Hardmax", {"x": X}, refused="no handler for op type Hardmax"),
    one_op("custom_domain_refused", "Relu", {"x": X}, domain="com.example", refused="domain(s) ['com.example']"),
    Case("rank_at_run_time_refused", [node("Reshape", ["x", "shape"], ["r"]), node("Transpose", ["r"])],
         {"x": X, "shape": ints([4, 6])}, refused="the rank of input 'data' (tensor 'r') is only known at run time"),
]

test_handler, test_handler_in_tflite = handler_tests(CASES)
