"""The SavedModel's serving signature: detectron2's test-time steps around the model, in TensorFlow."""
