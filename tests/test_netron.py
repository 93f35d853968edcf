"""d2tf.netron: a stage's ONNX file served by Netron on a local port."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import onnx
from onnx import TensorProto, helper

from tests.conftest import run_python

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_model(path):
    """A one-node ONNX model (y = relu(x)): all Netron needs to serve."""
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    onnx.save(helper.make_model(graph), path)


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def fetch(url):
    """(status, body) of a GET."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def wait_for(url, proc, timeout=30):
    """Polls until the server answers; fails early if the process has exited."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.stderr.read()
        try:
            return fetch(url)
        except OSError:
            assert time.monotonic() < deadline, f"no answer from {url} in {timeout} s"
            time.sleep(0.3)


def test_serves_the_stage_file(tmp_path):
    tiny_model(tmp_path / "model.onnx")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "d2tf.netron", "--out", tmp_path, "--stage", "export",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = f"http://localhost:{port}"
        status, page = wait_for(url + "/", proc)
        assert status == 200
        # Netron's page names the model it loads in a meta tag; the server hands the file out under /data/.
        assert b'<meta name="file" content="/data/model.onnx">' in page
        assert fetch(url + "/data/model.onnx") == (200, (tmp_path / "model.onnx").read_bytes())
        assert url in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_missing_file_is_one_line(tmp_path):
    result = run_python("-m", "d2tf.netron", "--out", tmp_path, "--stage", "graphfix")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "model.fixed.onnx not found" in lines[0]


def test_unknown_stage_is_one_line(tmp_path):
    result = run_python("-m", "d2tf.netron", "--out", tmp_path, "--stage", "tf_import")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and lines == ["error: unknown stage 'tf_import': choose export or graphfix"]
