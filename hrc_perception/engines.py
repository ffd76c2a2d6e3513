"""Inference engines for the package's networks: the same torch module run by torch (the
reference), ONNX Runtime or OpenVINO, compiled for each input shape.

``compile_network(module, example_inputs, engine)`` returns a callable taking numpy arrays
(the module's positional inputs, the example's shapes and dtypes) and returning the
module's outputs as a list of float32 numpy arrays (tuples and dicts of tensors flattened
in order); ``as_module`` wraps that as a torch module, a drop-in inside a predictor.
ONNX Runtime runs the module exported by torch's TorchScript-based ONNX exporter (static
shapes, opset 17); OpenVINO converts the torch module itself (its PyTorch frontend: its
ONNX frontend refuses the heatmap heads' log-sum-exp) at fp32 precision. Every engine
uses ``threads`` CPU threads (default: torch's). Detection post-processing (proposals,
NMS, mask pasting) stays in torch: the engines run the dense parts (backbones, heads on
fixed crops).
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence

import numpy as np

ENGINES = ("torch", "onnxruntime", "openvino")


def _flatten(out) -> list:
    if isinstance(out, dict):
        return [v for item in out.values() for v in _flatten(item)]
    if isinstance(out, (list, tuple)):
        return [v for item in out for v in _flatten(item)]
    return [out]


def _flat(module):
    """module wrapped so that its outputs are a flat tuple of tensors (what ONNX export takes)."""
    import torch

    class Flat(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *xs):
            return tuple(_flatten(self.inner(*xs)))
    return Flat(module).eval()


def onnx_bytes(module, example_inputs: Sequence) -> bytes:
    """The module (eval mode) as an ONNX model for the example inputs' shapes."""
    import torch
    buf = io.BytesIO()
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # the TorchScript tracer, chosen: static shapes
        torch.onnx.export(_flat(module), tuple(example_inputs), buf, dynamo=False, opset_version=17,
                          input_names=[f"in{i}" for i in range(len(example_inputs))], do_constant_folding=True)
    return buf.getvalue()


def compile_network(module, example_inputs: Sequence, engine: str, threads: int | None = None
                    ) -> Callable[..., list[np.ndarray]]:
    """A callable running module on numpy inputs with engine (onnxruntime or openvino; torch
    itself needs none: ``as_module``); see the module doc."""
    import torch
    if engine not in ENGINES[1:]:
        raise ValueError(f"engine must be one of {', '.join(ENGINES[1:])}, got {engine!r}")
    threads = int(threads or torch.get_num_threads())
    module = module.eval()
    if engine == "onnxruntime":
        import onnxruntime as ort
        model = onnx_bytes(module, example_inputs)
        names = [f"in{i}" for i in range(len(example_inputs))]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

        def run_ort(*xs):
            return [np.asarray(o, np.float32) for o in session.run(None, dict(zip(names, xs)))]
        return run_ort
    import openvino as ov
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # it traces with torch.jit
        converted = ov.convert_model(_flat(module), example_input=tuple(example_inputs))
    compiled = ov.Core().compile_model(converted, "CPU",
                                       {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                        "INFERENCE_PRECISION_HINT": "f32"})

    def run_ov(*xs):
        res = compiled(list(xs))
        return [np.asarray(res[o], np.float32) for o in compiled.outputs]
    return run_ov


def as_module(module, engine: str, threads: int | None = None):
    """A torch module computing module's outputs with engine: a drop-in for a network inside
    a predictor (module itself for 'torch'). It is compiled for each new input shape on first
    use (an ONNX export and a session: seconds) and keeps the output structure (a tensor, a
    tuple, or a dict's keys in order); its outputs are new float32 tensors, not differentiable."""
    import torch
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "torch":
        return module
    if any(p.device.type != "cpu" for p in module.parameters()):
        raise ValueError(f"engine {engine} runs on the CPU: the network is on {next(module.parameters()).device}")
    module = module.eval()
    compiled: dict = {}

    class EngineModule(torch.nn.Module):
        def forward(self, *xs):
            key = tuple((tuple(x.shape), str(x.dtype)) for x in xs)
            if key not in compiled:
                with torch.inference_mode():
                    ref = module(*xs)
                compiled[key] = (compile_network(module, xs, engine, threads), ref)
            run, ref = compiled[key]
            outs = [torch.from_numpy(o) for o in run(*(x.detach().cpu().numpy() for x in xs))]
            if isinstance(ref, dict):
                return type(ref)(zip(ref.keys(), outs))
            if isinstance(ref, (tuple, list)):
                return type(ref)(outs)
            return outs[0]
    wrapped = EngineModule().eval()
    wrapped.engine = engine
    return wrapped
