"""ONNX export with rnn_fused.onnx (docs/export.md): each exported graph runs in
onnxruntime on the CPU, at other batch sizes and lengths than it was exported
with, and matches eager."""
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.export import Dim
from torch.utils._pytree import tree_leaves

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnx_ir as ir  # noqa: E402

import rnn_fused.onnx  # noqa: E402
from rnn_fused import FusedGRU, FusedLSTM, FusedRNN, fused_rnn  # noqa: E402

from helpers import make_mask, report  # noqa: E402

CELLS = {"rnn": FusedRNN, "gru": FusedGRU, "lstm": FusedLSTM}
ONNX_OPS = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
# onnxruntime against the CPU kernels: float32 differences measured up to 4.5e-7,
# float64 up to 2.3e-16.
TOLERANCES = {torch.float32: dict(atol=2e-6, rtol=2e-6),
              torch.float64: dict(atol=1e-12, rtol=1e-12)}


def export(model, args, kwargs, dynamic_shapes):
    return torch.onnx.export(model, args, kwargs=kwargs, dynamo=True, verbose=False,
                             dynamic_shapes=dynamic_shapes,
                             custom_translation_table=rnn_fused.onnx.custom_translation_table())


def run_onnx(program, args, kwargs):
    """The exported graph (an ONNXProgram, or the path of a saved one) in
    onnxruntime (CPU) on the tensors of (args, kwargs), flattened as the exporter
    flattens them (numbers are constants in the graph)."""
    model = program if isinstance(program, str) else program.model_proto.SerializeToString()
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    leaves = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    assert len(names) == len(leaves), (names, [tuple(t.shape) for t in leaves])
    return [torch.from_numpy(a) for a in
            session.run(None, {name: t.numpy() for name, t in zip(names, leaves)})]


def compare(name, program, model, args, kwargs, dtype=torch.float32):
    with torch.no_grad():
        expected = tree_leaves(model(*args, **kwargs))
    actual = run_onnx(program, args, kwargs)
    assert len(actual) == len(expected)
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert a.dtype == e.dtype and a.shape == e.shape, (name, k, a.dtype, a.shape, e.shape)
        report(f"{name} output {k}", a, e, **TOLERANCES[dtype])


def graph_ops(program):
    """The op types of the main graph (not inside a Scan's body)."""
    return [node.op_type for node in program.model.graph]


def assert_every_initializer_read(program):
    """No weight is left behind by a removed node (a Scan's body included)."""
    graph = program.model.graph
    read = {value for node in ir.traversal.RecursiveGraphIterator(graph)
            for value in node.inputs}
    unread = [name for name, value in graph.initializers.items() if value not in read]
    assert not unread, unread


def states_like(cell, rnn, batch, dtype=torch.float32, batched=True):
    shape = (rnn.num_layers * rnn.num_directions,) + ((batch,) if batched else ()) + (
        rnn.hidden_size,)
    if cell == "lstm":
        return torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype)
    return torch.randn(shape, dtype=dtype)


def batch_first_inputs(cell, rnn, mask_kind, batch, steps, dtype=torch.float32):
    """(args, kwargs) for a batch_first module: fresh input, hx and, with a mask,
    a reset state other than hx."""
    kwargs = dict(hx=states_like(cell, rnn, batch, dtype))
    mask = make_mask(mask_kind, batch, steps)
    if mask is not None:
        kwargs.update(mask=mask, reset_state=states_like(cell, rnn, batch, dtype))
    return (torch.randn(batch, steps, rnn.input_size, dtype=dtype),), kwargs


def batch_first_dynamic_shapes(cell, kwargs):
    batch, steps = Dim("batch"), Dim("steps")
    state = ({1: batch}, {1: batch}) if cell == "lstm" else {1: batch}
    shapes = dict(input={0: batch, 1: steps}, hx=state)
    if "mask" in kwargs:
        shapes.update(mask={0: batch, 1: steps}, reset_state=state)
    return shapes


# Without a mask ONNX's own RNN, GRU or LSTM, with one a Scan, each in both
# directions; a bool mask and a float one.
@pytest.mark.parametrize("mask_kind, bidirectional",
                         [("none", False), ("none", True), ("resets", True), ("blend", False)])
@pytest.mark.parametrize("cell", list(CELLS))
def test_onnx_matches_eager(cell, mask_kind, bidirectional):
    rnn = CELLS[cell](3, 6, num_layers=2, batch_first=True, bidirectional=bidirectional).eval()
    args, kwargs = batch_first_inputs(cell, rnn, mask_kind, batch=3, steps=5)
    program = export(rnn, args, kwargs, batch_first_dynamic_shapes(cell, kwargs))

    ops = graph_ops(program)
    per_layer = rnn.num_layers * rnn.num_directions
    if mask_kind == "none":
        assert ops.count(ONNX_OPS[cell]) == per_layer and "Scan" not in ops, ops
    else:
        assert ops.count("Scan") == per_layer and ONNX_OPS[cell] not in ops, ops
    assert_every_initializer_read(program)

    for batch, steps in ((3, 5), (2, 8), (5, 1)):
        args, kwargs = batch_first_inputs(cell, rnn, mask_kind, batch, steps)
        compare(f"B={batch} T={steps}", program, rnn, args, kwargs)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("nonlinearity", ["relu", "identity"])
def test_onnx_nonlinearities(nonlinearity, masked):
    rnn = FusedRNN(3, 5, nonlinearity=nonlinearity, batch_first=True, init="torch").eval()
    mask_kind = "resets" if masked else "none"
    args, kwargs = batch_first_inputs("rnn", rnn, mask_kind, batch=3, steps=4)
    program = export(rnn, args, kwargs, batch_first_dynamic_shapes("rnn", kwargs))
    assert ("Scan" if masked else "RNN") in graph_ops(program)
    compare(nonlinearity, program, rnn, *batch_first_inputs("rnn", rnn, mask_kind, 2, 6))


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("cell", list(CELLS))
def test_onnx_unbatched_without_bias(cell, masked):
    rnn = CELLS[cell](3, 4, bias=False, bidirectional=True).eval()

    def inputs(steps):
        kwargs = dict(hx=states_like(cell, rnn, 1, batched=False))
        if masked:
            kwargs.update(mask=torch.rand(steps) > 0.4, reset_state=0.5)
        return (torch.randn(steps, 3),), kwargs

    args, kwargs = inputs(5)
    steps = Dim("steps")
    shapes = dict(input={0: steps}, hx=({}, {}) if cell == "lstm" else {})
    if masked:
        shapes.update(mask={0: steps}, reset_state=None)
    program = export(rnn, args, kwargs, shapes)
    assert ("Scan" if masked else ONNX_OPS[cell]) in graph_ops(program)
    compare("unbatched", program, rnn, *inputs(7))


@pytest.mark.parametrize("mask_kind", ["none", "resets"])
def test_onnx_lstm_with_projections(mask_kind):
    """ONNX's LSTM has no projection: a Scan for every layer and direction, mask or not."""
    lstm = FusedLSTM(3, 6, num_layers=2, proj_size=4, batch_first=True,
                     bidirectional=True).eval()

    def inputs(batch, steps):
        states = tuple(torch.randn(4, batch, width) for width in (4, 6))
        kwargs = dict(hx=states)
        mask = make_mask(mask_kind, batch, steps)
        if mask is not None:
            kwargs.update(mask=mask, reset_state=tuple(torch.randn_like(s) for s in states))
        return (torch.randn(batch, steps, 3),), kwargs

    args, kwargs = inputs(3, 5)
    program = export(lstm, args, kwargs, batch_first_dynamic_shapes("lstm", kwargs))
    ops = graph_ops(program)
    assert ops.count("Scan") == 4 and "LSTM" not in ops, ops
    assert_every_initializer_read(program)
    for batch, steps in ((3, 5), (2, 8)):
        compare(f"B={batch} T={steps}", program, lstm, *inputs(batch, steps))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_onnx_reset_states_per_step(cell):
    """Reset states given one per step ride into the Scan as a scanned input."""
    rnn = CELLS[cell](3, 5, num_layers=2, batch_first=True, bidirectional=True).eval()

    def inputs(batch, steps):
        hx = states_like(cell, rnn, batch)
        resets = tuple(torch.randn(4, batch, steps, 5) for _ in range(2 if cell == "lstm"
                                                                      else 1))
        return (torch.randn(batch, steps, 3),), dict(
            hx=hx, mask=make_mask("resets", batch, steps),
            reset_state=resets if cell == "lstm" else resets[0])

    args, kwargs = inputs(3, 5)
    batch, steps = Dim("batch"), Dim("steps")
    state = {1: batch}
    per_step = {1: batch, 2: steps}
    shapes = dict(input={0: batch, 1: steps}, mask={0: batch, 1: steps},
                  hx=(state, state) if cell == "lstm" else state,
                  reset_state=(per_step, per_step) if cell == "lstm" else per_step)
    program = export(rnn, args, kwargs, shapes)
    assert graph_ops(program).count("Scan") == 4
    for batch, steps in ((3, 5), (2, 8)):
        compare(f"B={batch} T={steps}", program, rnn, *inputs(batch, steps))


@pytest.mark.parametrize("cell", list(CELLS))
def test_onnx_float64_with_mask(cell):
    """The Scan runs in float64 (onnxruntime's RNN, GRU and LSTM kernels take
    float32 only, so an unmasked float64 graph is valid ONNX that it cannot run)."""
    rnn = CELLS[cell](3, 4, batch_first=True, dtype=torch.float64).eval()
    args, kwargs = batch_first_inputs(cell, rnn, "blend", 3, 5, torch.float64)
    program = export(rnn, args, kwargs, batch_first_dynamic_shapes(cell, kwargs))
    compare("float64", program, rnn,
            *batch_first_inputs(cell, rnn, "blend", 2, 6, torch.float64), torch.float64)


def test_onnx_fused_rnn_reverse():
    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.w_ih, self.w_hh = nn.Parameter(torch.randn(4, 3)), nn.Parameter(torch.randn(4, 4))

        def forward(self, x, mask):
            return fused_rnn(x, self.w_ih, self.w_hh, mask=mask, reset_state=-1.0,
                             reverse=True)

    layer = Layer().eval()
    batch, steps = Dim("batch"), Dim("steps")
    program = export(layer, (torch.randn(5, 3, 3), make_mask("resets", 3, 5).t()), None,
                     dict(x={0: steps, 1: batch}, mask={0: steps, 1: batch}))
    compare("fused_rnn", program, layer, (torch.randn(6, 2, 3), make_mask("resets", 2, 6).t()),
            {})


class GatedOutputs(nn.Module):
    """Reads all five outputs of the gated op: c_n, every step's c ("cells") and
    the gates the kernels save for the backward ("saved") included."""

    def __init__(self, cell, masked):
        super().__init__()
        self.cell, self.masked = cell, masked
        self.rnn = CELLS[cell](3, 4)

    def forward(self, x, h0, c0, mask, reset):
        lstm = self.cell == "lstm"
        return torch.ops.rnn_fused.layer_forward(
            x, self.rnn.weight_ih_l0, self.rnn.weight_hh_l0, self.rnn.bias_ih_l0,
            self.rnn.bias_hh_l0, h0, c0 if lstm else None, mask if self.masked else None,
            reset if self.masked else None, reset if self.masked and lstm else None,
            self.cell, True, "auto")


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_onnx_gated_op_outputs_beyond_h_n(cell, masked):
    """A graph that reads them keeps the second Scan that computes them; the
    modules' graphs never do (test_onnx_matches_eager counts the Scans)."""
    model = GatedOutputs(cell, masked).eval()

    def inputs(steps, batch):
        return (torch.randn(steps, batch, 3), torch.randn(batch, 4), torch.randn(batch, 4),
                make_mask("blend", batch, steps).t().float(), torch.randn(batch, 4)), {}

    steps, batch = Dim("steps"), Dim("batch")
    program = export(model, *inputs(5, 3),
                     ({0: steps, 1: batch}, {0: batch}, {0: batch}, {0: steps, 1: batch},
                      {0: batch}))
    assert graph_ops(program).count("Scan") == (2 if masked else 1)
    args, _ = inputs(7, 2)
    with torch.no_grad():
        expected = model(*args)
    session = ort.InferenceSession(program.model_proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    # The inputs the op does not read (the GRU's c0; mask and reset without a
    # mask) are not graph inputs.
    named = dict(zip(("x", "h0", "c0", "mask", "reset"), args))
    actual = session.run(None, {i.name: named[i.name].numpy() for i in session.get_inputs()})
    for name, a, e in zip(("output", "h_n", "c_n", "cells", "saved"), actual, expected):
        a = torch.from_numpy(a)
        assert a.dtype == e.dtype and a.shape == e.shape, (name, a.dtype, a.shape, e.shape)
        if e.numel():  # the GRU's c_n and cells are empty
            report(name, a, e, **TOLERANCES[torch.float32])


def test_docs_export_snippets_run(tmp_path, monkeypatch):
    """docs/export.md's ONNX and torch.export snippets run, in order (AOTInductor's
    is test_aoti.py's case)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "export.md").read_text()
    sections = [text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
                for title in ("ONNX", "torch.export")]
    snippets = [s for section in sections
                for s in re.findall(r"```python\n(.*?)```", section, flags=re.S)]
    assert len(snippets) == 3
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for snippet in snippets:
        exec(compile(snippet, "docs/export.md", "exec"), namespace)
    assert (tmp_path / "lstm.onnx").exists() and (tmp_path / "lstm.pt2").exists()


def test_import_does_not_need_onnx():
    code = ("import sys, rnn_fused; rnn_fused.FusedLSTM(2, 3); "
            "assert not {'onnx', 'onnxscript', 'onnx_ir'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("cell", list(CELLS))
def test_plain_export_call(cell, tmp_path):
    """torch.onnx.export(model, args, path) with no table: importing rnn_fused.onnx
    (above) registered the translation."""
    rnn = CELLS[cell](3, 6, num_layers=2, batch_first=True, bidirectional=True).eval()
    args, kwargs = batch_first_inputs(cell, rnn, "resets", batch=3, steps=5)
    path = str(tmp_path / "model.onnx")
    torch.onnx.export(rnn, args, path, kwargs=kwargs, verbose=False)
    compare(cell, path, rnn, args, kwargs)


def test_export_without_the_import_names_it():
    """Without `import rnn_fused.onnx`, torch.onnx's exporter stops at the trace with
    our message, not later at torch's "No ONNX function found"."""
    code = textwrap.dedent("""
        import torch, rnn_fused

        class Functional(torch.nn.Module):
            def forward(self, x, w_ih, w_hh):
                return rnn_fused.fused_rnn(x, w_ih, w_hh)[0]

        x = torch.randn(5, 2, 3)
        for model, args in ((rnn_fused.FusedGRU(3, 4).eval(), (x,)),
                            (Functional(), (x, torch.randn(4, 3), torch.randn(4, 4)))):
            try:
                torch.onnx.export(model, args, verbose=False)
            except Exception as error:
                assert "run `import rnn_fused.onnx` before exporting" in str(error), error
            else:
                raise AssertionError("exported without the translation")
        """)
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("cell", list(CELLS))
def test_torchscript_exporter(cell, tmp_path):
    """torch.onnx.export(dynamo=False) writes ONNX's own operator, at other batch
    sizes and lengths than it traced."""
    rnn = CELLS[cell](3, 6, num_layers=2, batch_first=True, bidirectional=True).eval()
    path = str(tmp_path / "model.onnx")
    state_names = ["h0", "c0"] if cell == "lstm" else ["h0"]
    axes = {"input": {0: "batch", 1: "steps"}, **{name: {1: "batch"} for name in state_names}}
    torch.onnx.export(rnn, (torch.randn(2, 4, 3), states_like(cell, rnn, 2)), path,
                      dynamo=False, input_names=["input", *state_names], dynamic_axes=axes)
    import onnx
    assert ONNX_OPS[cell] in {node.op_type for node in onnx.load(path).graph.node}
    x = torch.randn(3, 7, 3)
    compare(cell, path, rnn, (x, states_like(cell, rnn, 3)), {})
    # Without hx: torch's forward starts from zeros, as ours does.
    torch.onnx.export(rnn, (torch.randn(2, 4, 3),), path, dynamo=False,
                      input_names=["input"], dynamic_axes={"input": {0: "batch", 1: "steps"}})
    compare(f"{cell} without hx", path, rnn, (x,), {})


def test_torchscript_exporter_refuses_our_options(tmp_path):
    """ONNX's own operators have no mask, per-step states, projection or identity
    nonlinearity: dynamo=False names what it cannot write, and dynamo=True."""
    x = torch.randn(5, 2, 3)
    cases = [(FusedLSTM(3, 4).eval(), (x, None, torch.rand(5, 2) > 0.3, 0.5), "has no mask"),
             (FusedGRU(3, 4).eval(), (x, None, None, None, True), "has no step_states"),
             (FusedLSTM(3, 4, proj_size=2).eval(), (x,), "has no proj_size"),
             (FusedRNN(3, 4, nonlinearity="identity").eval(), (x,),
              "has no nonlinearity='identity'")]
    for model, args, message in cases:
        with pytest.raises(torch.onnx.errors.OnnxExporterError, match=message):
            torch.onnx.export(model, args, str(tmp_path / "model.onnx"), dynamo=False)

    class Functional(nn.Module):
        def forward(self, x, w_ih, w_hh):
            return fused_rnn(x, w_ih, w_hh)[0]
    with pytest.raises(torch.onnx.errors.OnnxExporterError, match="export with dynamo=True"):
        torch.onnx.export(Functional(), (x, torch.randn(4, 3), torch.randn(4, 4)),
                          str(tmp_path / "model.onnx"), dynamo=False)
