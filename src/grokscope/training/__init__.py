"""Training: float64 cross-entropy, AdamW with decay by name, the loop, atomic checkpoints."""
