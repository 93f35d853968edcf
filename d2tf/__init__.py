"""The top of d2tf: the `d2tf` command (cli, every tool under one name), the `make convert` driver (convert), Netron
(netron) and calibrated test checkpoints (calibrate). Nothing below imports from here."""
