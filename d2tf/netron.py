"""`python -m d2tf.netron --out DIR --stage export|graphfix [--port 8080]`: serves one stage's ONNX file in Netron
on a local port until Ctrl-C. No browser is opened (the machines this runs on often have no screen): open the
printed URL, through an SSH tunnel if needed."""

import argparse
import logging
import os

from core import D2TFError, cli

STAGE_FILES = {"export": "model.onnx", "graphfix": "model.fixed.onnx"}


def stage_file(out_dir, stage):
    """The ONNX file a stage wrote into `out_dir`, or one clear error."""
    if stage not in STAGE_FILES:
        raise D2TFError(f"unknown stage {stage!r}: choose {' or '.join(STAGE_FILES)}")
    path = os.path.join(out_dir, STAGE_FILES[stage])
    if not os.path.isfile(path):
        raise D2TFError(f"{path} not found: run the {stage} stage first (make convert OUT={out_dir})")
    return path


def serve(path, host, port):
    """Starts Netron's server thread on (host, port); returns its URL. The page loads the model from
    `<URL>/data/<file name>`."""
    import netron

    # Netron logs its own "Serving ..." line; the URL printed below is the one to use.
    logging.getLogger("netron").setLevel(logging.WARNING)
    try:
        host, port = netron.serve(path, address=(host, port), browse=False)
    except OSError as e:
        raise D2TFError(f"cannot serve on {host}:{port}: {e.strerror}; choose another --port") from None
    return f"http://{host}:{port}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m d2tf.netron", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the conversion's output directory")
    parser.add_argument("--stage", required=True, help="export (model.onnx) or graphfix (model.fixed.onnx)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="localhost", help="address to listen on (default: localhost only)")
    args = parser.parse_args(argv)
    path = stage_file(args.out, args.stage)
    url = serve(path, args.host, args.port)
    print(f"Netron: {url}  ({path}; Ctrl-C stops)", flush=True)
    import netron

    netron.wait()  # returns on Ctrl-C, after stopping the server


if __name__ == "__main__":
    cli.run(main)
