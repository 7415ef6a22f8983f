"""The deploy graph: the model's own modules with a fixed input size and K detection slots.

    deploy_graph        DeployGraph, StaticRoIHeads, InputNormalizer
    static_proposals    fixed-count RPN proposals
    static_detections   per-class selection into K slots
    static_ops          fixed-shape NMS and multi-level RoIAlign
    onnx_static         folding an exported ONNX graph to fully static shapes
"""
