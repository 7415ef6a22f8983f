"""plugrcnn_deploy: export the assembled model to ONNX, TensorRT and AOTInductor, run it on video.

    DeploySpec                       the fixed input / K detections / named outputs of an export
    DeployGraph(model, spec)         the fixed-size graph built from the model's own modules
    export_model(model, spec, fmt, output)   -> ONNX file, TensorRT engine, AOTInductor package
    load_runtime(backend, model, model_path=..., device=...)   -> Runtime: run(images), infer(frames)
    verify_export(model, runtime, images, fp16=...)             -> VerifyReport
    VideoPipeline(runtime, drawer).process(video, output)      -> VideoReport

Command line: `plugrcnn export`, `plugrcnn video`, `plugrcnn bench` (cli/).
Layout: graph/ (the static graph), formats/ (export formats and their files), runtimes/,
video/ (frames, pipeline, bench), cli/; export.py and verify.py tie them together.
"""
from __future__ import annotations

from plugrcnn_deploy.export import export_model, verify_export
from plugrcnn_deploy.formats.spec import DeploySpec
from plugrcnn_deploy.graph.deploy_graph import DeployGraph
from plugrcnn_deploy.runtimes import Runtime, load_runtime

__all__ = ["DeployGraph", "DeploySpec", "Runtime", "export_model", "load_runtime", "verify_export"]
