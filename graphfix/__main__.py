from d2tf import cli
from graphfix.cli import main

cli.run(main)
