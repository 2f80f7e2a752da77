#!/usr/bin/env bash
# TorchRL's own RNN tests (test/modules/test_rnn.py of a pytorch/rl checkout at the
# installed version) with rnn_fused's integration switched on by
# scripts/torchrl_switch.py. Not part of `make test`: CI has no copy of pytorch/rl.
# Usage: scripts/torchrl_own_tests.sh PATH_TO_PYTORCH_RL [pytest args...]
set -euo pipefail
rl=${1:?usage: $0 PATH_TO_PYTORCH_RL [pytest args...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-$here/../.venv/bin/python}
cd "$rl"
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m pytest -q -p no:cacheprovider \
    -p torchrl_switch test/modules/test_rnn.py "$@"
