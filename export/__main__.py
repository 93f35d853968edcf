from d2tf import cli
from export.cli import main

cli.run(main)
