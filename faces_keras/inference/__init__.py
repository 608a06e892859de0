"""Inference: predict labels for faces in new photos with a trained run."""
