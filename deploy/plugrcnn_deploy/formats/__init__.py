"""Export formats and the files they write.

    spec             DeploySpec: the fixed input, K detections and named outputs of an export
    onnx_export      ONNX (+ the TensorRT op check in tensorrt_ops)
    tensorrt_build   TensorRT engines and their sidecar
    aoti             AOTInductor packages
    triton           a Triton model-repository entry
    io_description   the inputs / outputs of an exported file, for people and Triton
    files            atomic writes of output files
"""
