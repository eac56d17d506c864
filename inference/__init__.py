"""Datasets and splits, U-Net training and prediction tasks, model registry, metrics, review."""
