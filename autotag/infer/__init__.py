"""Inference: track-level prediction from a checkpoint, and the Parquet output tables."""
