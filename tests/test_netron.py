"""d2tf.netron: a stage's ONNX file served by Netron on a local port, and what a real browser shows of it."""

import contextlib
import datetime
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import onnx
import pytest
from onnx import TensorProto, helper

from d2tf.netron import netron_dir
from tests.processes import run_python

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROWSER_TIMEOUT = 30  # s for one page to settle; it takes 2-4 s
# Netron's graph of tiny_model, in the order the page draws its texts: the two edges' shapes, then the nodes.
TINY_GRAPH = ["1×3", "1×3", "x", "Relu", "y"]


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
    """(status, headers, body) of a GET."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers, response.read()


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


@contextlib.contextmanager
def serving(out_dir):
    """`python -m d2tf.netron` on out_dir's model.onnx at a free port, once it answers: yields (URL, process)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "d2tf.netron", "--out", out_dir, "--stage", "export",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = f"http://localhost:{port}"
        wait_for(url + "/", proc)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serves_the_stage_file(tmp_path):
    tiny_model(tmp_path / "model.onnx")
    with serving(tmp_path) as (url, proc):
        status, headers, page = fetch(url + "/")
        assert status == 200
        # Netron's page names the model it loads in a meta tag; the server hands the file out under /data/.
        assert b'<meta name="file" content="/data/model.onnx">' in page
        # What keeps the page working offline (d2tf.netron's doc); the browser tests below show the effect.
        assert b'<meta name="date"' not in page
        assert headers["Content-Security-Policy"] == "connect-src 'self'"
        assert re.fullmatch(r"consent=\d+; Path=/; SameSite=Strict", headers["Set-Cookie"])
        status, _, model = fetch(url + "/data/model.onnx")
        assert (status, model) == (200, (tmp_path / "model.onnx").read_bytes())
        assert url in proc.stdout.readline()


def one_line_error(*args):
    """The single stderr line of a d2tf.netron run that must fail with exit status 2."""
    result = run_python("-m", "d2tf.netron", *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    return lines[0]


def test_missing_file_is_one_line(tmp_path):
    line = one_line_error("--out", tmp_path, "--stage", "graphfix")
    assert line.startswith("error: ") and "model.fixed.onnx not found" in line


def test_unknown_stage_is_one_line(tmp_path):
    assert one_line_error("--out", tmp_path, "--stage", "tf_import") == \
        "error: unknown stage 'tf_import': choose export or graphfix"


def test_port_out_of_range_is_one_line(tmp_path):
    tiny_model(tmp_path / "model.onnx")
    assert one_line_error("--out", tmp_path, "--stage", "export", "--port", "99999") == \
        "error: --port 99999 is out of range: choose one in 1-65535"


def test_port_in_use_is_one_line(tmp_path):
    tiny_model(tmp_path / "model.onnx")
    with socket.socket() as taken:
        taken.bind(("localhost", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert one_line_error("--out", tmp_path, "--stage", "export", "--port", str(port)) == \
            f"error: cannot serve on localhost:{port}: Address already in use; choose another --port"


def require(tool):
    """Skips a test without `tool` (a Debian package) unless the user is root: as root, make setup installs it, so
    there (CI) a missing tool is a failure, never a skip."""
    if shutil.which(tool) is None:
        if os.geteuid() == 0:
            pytest.fail(f"{tool} is not installed: run make setup, which installs it as root")
        pytest.skip(f"{tool} is not installed; make setup installs it only as root (apt-get install {tool})")


class Browser:
    """Headless chromium on a fresh profile, driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
    commands in on fd 3, replies out on fd 4, each one JSON message ended by a NUL), so no websocket client is
    needed. Every host but localhost is unresolvable, as for an offline user. `clock` prefixes the command
    (faketime)."""

    def __init__(self, profile, clock=()):
        commands, self.commands = os.pipe()
        self.replies, replies = os.pipe()
        # sh moves the pipe's ends from its stdin and stdout to the fds chromium expects (no Python between fork and
        # exec, which is unsafe in a process with threads).
        self.process = subprocess.Popen(
            [*clock, "sh", "-c", 'exec "$@" 3<&0 4>&1 </dev/null >/dev/null', "sh", "chromium", "--headless",
             "--no-sandbox", f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
             "--remote-debugging-pipe", "--window-size=1000,700", "about:blank"],
            stdin=commands, stdout=replies, stderr=subprocess.DEVNULL)
        os.close(commands)
        os.close(replies)
        self.deadline = time.monotonic() + BROWSER_TIMEOUT
        self.buffer, self.last_id, self.session = b"", 0, None
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.terminate()  # chromium's orderly shutdown, which ends its helper processes too
        self.process.wait(timeout=10)
        os.close(self.commands)
        os.close(self.replies)

    def message(self):
        while b"\0" not in self.buffer:
            ready, _, _ = select.select([self.replies], [], [], max(0.0, self.deadline - time.monotonic()))
            assert ready, f"chromium did not answer in {BROWSER_TIMEOUT} s"
            chunk = os.read(self.replies, 1 << 16)
            assert chunk, f"chromium exited with status {self.process.wait()}"
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, **params):
        """The result of one command, on the attached page once there is one."""
        self.last_id += 1
        command = {"id": self.last_id, "method": method, "params": params}
        if self.session:
            command["sessionId"] = self.session
        os.write(self.commands, json.dumps(command).encode() + b"\0")
        while (reply := self.message()).get("id") != self.last_id:
            pass  # events
        assert "error" not in reply, reply["error"]
        return reply["result"]

    def wait_for(self, event):
        while self.message().get("method") != event:
            pass

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page, once its promise (if any) settles."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        return result["result"]["value"]


# Netron's body is "welcome spinner" while loading, "default" with a graph shown, and gains "notification" or "alert"
# with a message (the consent and update requests, errors). Resolves once one of the latter shows, or after 10 s.
SETTLED = """new Promise((resolve) => {
    const start = performance.now();
    const poll = () => {
        const state = document.body.className;
        if (/default|notification|alert/.test(state) || performance.now() - start > 10000) {
            resolve({state, message: document.getElementById('message-text').innerText,
                     graph: Array.from(document.querySelectorAll('#canvas text'), (text) => text.textContent),
                     now: Date.now()});
        } else {
            setTimeout(poll, 50);
        }
    };
    poll();
})"""


def rendered(tmp_path, clock=()):
    """What chromium shows of tiny_model in d2tf.netron once the page settles (SETTLED's fields)."""
    tiny_model(tmp_path / "model.onnx")
    with serving(tmp_path) as (url, _), Browser(tmp_path / "profile", clock) as browser:
        browser.call("Page.enable")
        browser.call("Page.navigate", url=url)
        browser.wait_for("Page.loadEventFired")
        return browser.evaluate(SETTLED)


def test_browser_shows_the_graph_offline(tmp_path):
    require("chromium")
    seen = rendered(tmp_path)
    assert (seen["state"], seen["message"], seen["graph"]) == ("default", "", TINY_GRAPH)


def netron_build_date():
    """The build date in the pinned netron's page, from which Netron counts its age."""
    with open(os.path.join(netron_dir(), "index.html"), encoding="utf-8") as f:
        date = re.search(r'<meta name="date" content="([^"]+)">', f.read())[1]
    return datetime.datetime.strptime(date, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)


def test_browser_shows_the_graph_past_netrons_age_limit(tmp_path):
    require("chromium")
    require("faketime")
    build = netron_build_date()
    seen = rendered(tmp_path, clock=["faketime", f"{build + datetime.timedelta(days=365):%Y-%m-%d %H:%M:%S}"])
    # The page's own clock is past the 180 days after which Netron stops at "Please update to the newest version."
    assert seen["now"] / 1000 > (build + datetime.timedelta(days=180)).timestamp()
    assert (seen["state"], seen["message"], seen["graph"]) == ("default", "", TINY_GRAPH)
