from core import cli
from verify.run import main

cli.run(main)
