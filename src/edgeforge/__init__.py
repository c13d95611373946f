"""edgeforge: cross-compile TensorFlow Lite and ship it as per-platform Python wheels."""

__version__ = "0.2.0"
