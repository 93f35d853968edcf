"""The top of d2tf: the `make convert` driver (convert), Netron (netron) and calibrated test checkpoints
(calibrate). Nothing below imports from here."""
