"""A tiny third-party backbone for plugrcnn's tests."""
