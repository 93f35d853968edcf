from core import cli
from evaluate.run import main

cli.run(main)
