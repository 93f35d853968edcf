from core import cli
from export.cli import main

cli.run(main)
