from core import cli
from graphfix.cli import main

cli.run(main)
