from d2tf import cli
from tf_import.cli import main

cli.run(main)
