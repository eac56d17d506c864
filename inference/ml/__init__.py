"""Pure PyTorch/numpy ML core of Stroke AID (no Django): networks, transforms, losses, data,
training, prediction and metrics.

Import the submodules you need (``inference.ml.predictor``, ``inference.ml.trainer``, ...);
this package itself imports nothing heavy so that Django start-up never pays for torch.
"""
