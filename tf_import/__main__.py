from core import cli
from tf_import.cli import main

cli.run(main)
