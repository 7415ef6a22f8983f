"""plugrcnn_deploy: export the assembled model to ONNX, TensorRT and AOTInductor."""
from __future__ import annotations
