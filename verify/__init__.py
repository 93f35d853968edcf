"""`python -m verify OUT`: every stage of a conversion against the one before it, and against detectron2."""
