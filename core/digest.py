"""The sha256 that identifies a weights file: export records it in the model info, verify checks it before running
detectron2 on the file again."""

import hashlib


def file_sha256(path):
    """Hex sha256 of a file, read in 1 MiB chunks (checkpoints are hundreds of MiB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
