"""Training: fit a model into a run directory, resume it, evaluate it, compare models."""
