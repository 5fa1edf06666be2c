"""Training: task definitions (targets, losses), the Ray Train worker loop, checkpoints."""
