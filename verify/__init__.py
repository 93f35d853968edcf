"""`d2tf verify --out OUT`: every stage of a conversion against the one before it, and against detectron2."""
