"""`d2tf inspect --out OUT --stage export|graphfix [--port 8080]`: serves one stage's ONNX file in Netron
on a local port until Ctrl-C. No browser is opened (the machines this runs on often have no screen): open the
printed URL, through an SSH tunnel if needed.

d2tf serves Netron's page itself (the `netron` package is only its directory of static files) because the page as
Netron's own server hands it out stops an offline user before any graph shows, in two ways:
- its consent dialog ("This app uses cookies to report errors ...") appears whenever the page cannot reach
  ipinfo.io, and waits for a click;
- its age check ("Please update to the newest version.", in a loop, no graph) fires once the browser's clock is
  180 days past the `<meta name="date">` build date, which a pinned version reaches for certain.
The page d2tf serves differs from Netron's in three ways: every response carries a Content-Security-
Policy that lets the page connect to this server only, so nothing (usage reports, errors, the ipinfo.io look-up)
leaves the machine; it sets Netron's own `consent` cookie, since with nothing reported there is nothing to
consent to; and its `<meta name="date">` is dropped, which Netron reads as "built now" (its development builds),
so the age check never fires.
"""

import errno
import http.server
import io
import os
import re
import time
import urllib.parse

from core import D2TFError, cli, contract

STAGE_FILES = {"export": contract.ONNX, "graphfix": contract.FIXED_ONNX}
CONTENT_SECURITY_POLICY = "connect-src 'self'"
PAGE_PATHS = ("/", "/index.html")


def stage_file(out_dir, stage):
    """The ONNX file a stage wrote into `out_dir`, or one clear error."""
    if stage not in STAGE_FILES:
        raise D2TFError(f"unknown stage {stage!r}: choose {' or '.join(STAGE_FILES)}")
    path = os.path.join(out_dir, STAGE_FILES[stage])
    if not os.path.isfile(path):
        raise D2TFError(f"{path} not found: run the {stage} stage first (make convert OUT={out_dir})")
    return path


def netron_dir():
    """The installed netron package's directory: Netron's page and the static files it loads."""
    import netron

    return os.path.dirname(netron.__file__)


def replace_once(pattern, replacement, text):
    """`text` with the one match of `pattern` replaced; an error if Netron's page no longer has it (requirements.txt
    pins the netron whose page this was written for)."""
    text, count = re.subn(pattern, replacement, text)
    if count != 1:
        raise D2TFError(f"netron's index.html has {count} matches of {pattern!r}, expected 1: is the pinned netron "
                        "from requirements.txt installed? (make setup)")
    return text


def page(model_url):
    """Netron's index.html as d2tf serves it: loading `model_url`, with no build date (see the module's doc)."""
    with open(os.path.join(netron_dir(), "index.html"), encoding="utf-8") as f:
        html = f.read()
    html = replace_once(r'<meta name="date" content="[^"]*">\n', "", html)
    # Netron's own server adds the same two tags: the host type and the file the page opens on load.
    return replace_once(r'(<meta name="version" content="[^"]*">)',
                        rf'\1\n<meta name="type" content="Python">\n<meta name="file" content="{model_url}">', html)


class Handler(http.server.SimpleHTTPRequestHandler):
    """GET/HEAD of the page, of the model at `server.model_url`, and of Netron's static files; no listings."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=netron_dir(), **kwargs)

    def send_head(self):
        path = urllib.parse.urlsplit(self.path).path
        if path in PAGE_PATHS:
            # The timestamp is the value Netron itself stores in this cookie once its dialog is accepted.
            return self.send_ok(io.BytesIO(self.server.page), "text/html; charset=utf-8",
                                ("Set-Cookie", f"consent={int(time.time() * 1000)}; Path=/; SameSite=Strict"))
        if path == self.server.model_url:
            try:
                return self.send_ok(open(self.server.model_path, "rb"), "application/octet-stream")
            except OSError as e:  # gone since the start
                self.send_error(404, e.strerror)
                return None
        return super().send_head()

    def send_ok(self, body, content_type, *headers):
        """Sends a 200's headers for the seekable `body`; returns it for the caller to copy out and close."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(body.seek(0, io.SEEK_END)))
        body.seek(0)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        return body

    def end_headers(self):
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        super().end_headers()

    def list_directory(self, path):
        self.send_error(404)

    def log_message(self, format, *args):
        pass  # one line per request would bury the URL printed at start


def server(path, host, port):
    """An HTTP server bound to (host, port) serving `path` in Netron, or one clear error."""
    if not 1 <= port <= 65535:
        raise D2TFError(f"--port {port} is out of range: choose one in 1-65535")
    model_url = "/data/" + urllib.parse.quote(os.path.basename(path))
    html = page(model_url).encode("utf-8")
    try:
        httpd = http.server.ThreadingHTTPServer((host, port), Handler)
    except OSError as e:
        hint = "; choose another --port" if e.errno == errno.EADDRINUSE else ""
        raise D2TFError(f"cannot serve on {host}:{port}: {e.strerror}{hint}") from None
    httpd.model_path, httpd.model_url, httpd.page = path, model_url, html
    return httpd


def main(argv=None):
    parser = cli.ArgumentParser(
        prog="d2tf inspect", description=__doc__.splitlines()[0],
        epilog="Reads OUT/model.onnx (--stage export) or OUT/model.fixed.onnx (--stage graphfix). Writes nothing: "
        "serves the file and Netron's page over HTTP.")
    parser.add_argument("--out", required=True, help="the conversion's output directory")
    parser.add_argument("--stage", required=True, help="export (model.onnx) or graphfix (model.fixed.onnx)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="localhost", help="address to listen on (default: localhost only)")
    args = parser.parse_args(argv)
    path = stage_file(args.out, args.stage)
    with server(path, args.host, args.port) as httpd:
        print(f"Netron: http://{args.host}:{args.port}  ({path}; Ctrl-C stops)", flush=True)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass  # Ctrl-C is how this command is meant to end


if __name__ == "__main__":
    cli.run(main)
