"""A pytest plugin that runs TorchRL's own RNN tests with rnn_fused's integration
switched on: `torchrl.modules.LSTMModule` and `GRUModule` become FusedLSTMModule and
FusedGRUModule wherever those accept the arguments (TorchRL's Python RNNs and its
scan and Triton backends stay TorchRL's: they are what those tests are about).
Loaded before the test files import torchrl.modules' names
(scripts/torchrl_own_tests.sh). The summary counts the tests whose recurrent mode
ran through the fused one-call path, so that a run that never took it shows.
"""
import inspect

import pytest
import torchrl.modules

from rnn_fused.integrations import torchrl as integration

_stock = {"LSTMModule": torchrl.modules.LSTMModule, "GRUModule": torchrl.modules.GRUModule}
_calls = {"fused": 0}


def _switched(stock, fused):
    signature = inspect.signature(stock.__init__)

    class Switched(fused):
        def __new__(cls, *args, **kwargs):
            arguments = signature.bind(None, *args, **kwargs).arguments
            if arguments.get("python_based", False) or arguments.get(
                    "recurrent_backend", "pad") not in ("pad", "auto"):
                return stock(*args, **kwargs)
            return super().__new__(cls)

    Switched.__name__ = Switched.__qualname__ = stock.__name__
    return Switched


torchrl.modules.LSTMModule = _switched(_stock["LSTMModule"], integration.FusedLSTMModule)
torchrl.modules.GRUModule = _switched(_stock["GRUModule"], integration.FusedGRUModule)
_run_rows = integration._run_rows


def _counted_run_rows(*args, **kwargs):
    _calls["fused"] += 1
    return _run_rows(*args, **kwargs)


integration._run_rows = _counted_run_rows
_tests = {"fused": 0}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    before = _calls["fused"]
    try:
        return (yield)
    finally:
        _tests["fused"] += _calls["fused"] > before


def pytest_sessionfinish(session):
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["fused_tests"] = _tests["fused"]


@pytest.hookimpl(optionalhook=True)  # xdist's hook: absent without xdist
def pytest_testnodedown(node, error):
    _tests["fused"] += getattr(node, "workeroutput", {}).get("fused_tests", 0)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"rnn_fused: {_tests['fused']} tests ran recurrent mode "
                                "through the fused one-call path")
