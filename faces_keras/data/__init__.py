"""Data preparation: cut or detect faces, split by source, augment the training split, store."""
