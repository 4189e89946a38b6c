"""Metrics, mirroring keras.metrics."""
