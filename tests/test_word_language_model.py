"""PyTorch's word_language_model flow (pytorch/examples), in our own words: an
embedding, a recurrent stack and a decoder trained with truncated BPTT, then
saved whole, loaded back with torch.load's default weights_only=True, and
exported to ONNX. Only the recurrent module differs from torch.nn's: the losses
must match nn's step by step."""
import io

import pytest
import torch
from torch import nn

from rnn_fused import FusedGRU, FusedLSTM, FusedRNN

from helpers import report

NTOKEN, NINP, NHID, NLAYERS, BPTT, BATCH, EPOCHS = 20, 16, 16, 2, 7, 4, 4
MODULES = {"LSTM": (nn.LSTM, FusedLSTM), "GRU": (nn.GRU, FusedGRU), "RNN_TANH": (nn.RNN, FusedRNN)}


class LanguageModel(nn.Module):
    """Encoder, recurrent stack, decoder with tied weights, dropout between."""

    def __init__(self, recurrent_cls, **kwargs):
        super().__init__()
        self.drop = nn.Dropout(0.2)
        self.encoder = nn.Embedding(NTOKEN, NINP)
        self.rnn = recurrent_cls(NINP, NHID, NLAYERS, dropout=0.2, **kwargs)
        self.decoder = nn.Linear(NHID, NTOKEN)
        self.decoder.weight = self.encoder.weight

    def forward(self, tokens, hidden):
        output, hidden = self.rnn(self.drop(self.encoder(tokens)), hidden)
        return self.decoder(self.drop(output)), hidden


def init_hidden(model):
    zeros = torch.zeros(NLAYERS, BATCH, NHID)
    return (zeros, zeros.clone()) if isinstance(model.rnn, nn.LSTM) else zeros


def detached(hidden):
    return tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()


def corpus(length=BPTT * 12):
    """A learnable stream: each token is the previous one plus 1 or 2, columns per batch."""
    steps = torch.randint(1, 3, (length, BATCH), generator=torch.Generator().manual_seed(1))
    return torch.cumsum(steps, 0) % NTOKEN


def train_epoch(model, data, lr=5.0):
    """The example's loop: truncated BPTT, gradient clipping, plain SGD; the losses."""
    model.train()
    hidden, losses = init_hidden(model), []
    for i in range(0, data.shape[0] - 1 - BPTT, BPTT):
        tokens, targets = data[i:i + BPTT], data[i + 1:i + 1 + BPTT]
        hidden = detached(hidden)
        model.zero_grad()
        output, hidden = model(tokens, hidden)
        loss = nn.functional.cross_entropy(output.view(-1, NTOKEN), targets.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("mode", list(MODULES))
def test_trains_like_torch_nn_saves_loads_and_exports(mode, tmp_path):
    nn_cls, fused_cls = MODULES[mode]
    torch.manual_seed(0)
    reference = LanguageModel(nn_cls)
    model = LanguageModel(fused_cls)
    model.load_state_dict(reference.state_dict())
    data = corpus()
    losses = []
    for m in (reference, model):
        torch.manual_seed(2)  # the same dropout masks on both sides
        losses.append(sum((train_epoch(m, data) for _ in range(EPOCHS)), []))
    print(f"{mode} losses: nn {losses[0][0]:.3f} -> {losses[0][-1]:.3f}, "
          f"fused {losses[1][0]:.3f} -> {losses[1][-1]:.3f}")
    report(f"{mode} losses", torch.tensor(losses[1]), torch.tensor(losses[0]), atol=1e-4,
           rtol=1e-4)
    assert losses[1][-1] < 0.8 * losses[1][0]

    # The whole model, as the example saves its best one.
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    with torch.serialization.safe_globals([LanguageModel, nn.Dropout, nn.Embedding, nn.Linear]):
        loaded = torch.load(buffer)
    model.eval()
    loaded.eval()
    tokens = data[:BPTT]
    expected, expected_hidden = model(tokens, init_hidden(model))
    actual, actual_hidden = loaded(tokens, init_hidden(loaded))
    assert torch.equal(actual, expected)

    # The example's plain export call, to a path; `import rnn_fused.onnx` is the one
    # line the flow adds (docs/export.md).
    ort = pytest.importorskip("onnxruntime")
    import rnn_fused.onnx  # noqa: F401
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, (tokens, init_hidden(model)), str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    hidden = init_hidden(model)
    feeds = [tokens, *(hidden if isinstance(hidden, tuple) else (hidden,))]
    names = [i.name for i in session.get_inputs()]
    onnx_logits = torch.from_numpy(session.run(None, dict(zip(names, (t.numpy()
                                                                      for t in feeds))))[0])
    report(f"{mode} ONNX logits", onnx_logits, expected.detach(), atol=1e-5, rtol=1e-5)
