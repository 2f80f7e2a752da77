"""Which torch.onnx exporter, if any, is running the call (docs/export.md):

- the dynamo exporter (torch.onnx.export's default) builds its table of ONNX
  translations before it traces the model, from onnxscript's torch_lib registry,
  where `import rnn_fused.onnx` adds the layer op's translation. A trace that finds
  that module not imported would fail later with torch's "No ONNX function found",
  so it stops here, with the one line that is missing;
- the TorchScript exporter (dynamo=False) has ONNX's RNN, GRU and LSTM for torch's
  own operators, which a module without our options then calls (modules.py).

Read from torch.onnx's flags through sys.modules: a process that has not imported
torch.onnx's exporters is not exporting, and `import rnn_fused` stays as cheap as it
was (importing them takes about 50 ms). The dynamo exporter's check also runs under
dynamo, so that torch.onnx's strict capture stops with the same message.
"""
import sys
from typing import Optional

import torch

_DYNAMO_FLAGS = "torch.onnx._internal.exporter._flags"
_TORCHSCRIPT_GLOBALS = "torch.onnx._internal.torchscript_exporter._globals"


def onnx_exporter(name: str) -> Optional[str]:
    """'dynamo', 'torchscript' or None; `name` is the caller's, for the message.
    Every FusedRNN call pays it: 0.2–0.5 µs when not exporting."""
    if torch.compiler.is_exporting():
        flags = sys.modules.get(_DYNAMO_FLAGS)
        if flags is None or not flags._is_onnx_exporting:
            return None  # torch.export itself
        if "rnn_fused.onnx" not in sys.modules:
            raise torch.onnx.errors.OnnxExporterError(
                f"{name}: torch.onnx.export needs rnn_fused's ONNX translation: run "
                "`import rnn_fused.onnx` before exporting (docs/export.md)")
        return "dynamo"
    state = sys.modules.get(_TORCHSCRIPT_GLOBALS)
    # Dynamo refuses to trace the TorchScript exporter's flag, which is never set
    # under dynamo anyway. The flag is one for the whole process, so only this
    # thread's trace (the exporter traces with torch.jit.trace) reads it.
    if (state is None or torch.compiler.is_dynamo_compiling()
            or torch._C._get_tracing_state() is None):
        return None
    return "torchscript" if state.GLOBALS.in_onnx_export else None
