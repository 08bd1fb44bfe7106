"""Training: per-family update steps (``gan``, ``vae``), EMA, checkpoints and the cell loop."""
