"""Convert foreign checkpoints (torchvision) into plugrcnn state dicts."""
