"""The sdist: it carries every source the build needs, and a clean virtual
environment with torch installs it (CPU kernels) and runs it like torch.nn.RNN."""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("build", reason="the sdist needs the `build` package (make installs it)")


def in_tree_version():
    text = (ROOT / "rnn_fused" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE).group(1)


def subprocess_env(**variables):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # The venv's ninja (make installs it) makes the build parallel under MAX_JOBS.
    env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", "")])
    env.update(variables)
    return env


def run(command, cwd, **variables):
    result = subprocess.run(command, cwd=cwd, env=subprocess_env(**variables),
                            capture_output=True, text=True)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out),
         str(ROOT)], cwd=out, FORCE_CUDA="0")
    (archive,) = out.glob("*.tar.gz")
    return archive


def test_sdist_carries_every_source_and_one_version(sdist):
    version = in_tree_version()
    assert sdist.name == f"rnn_fused-{version}.tar.gz"
    prefix = f"rnn_fused-{version}/"
    with tarfile.open(sdist) as archive:
        members = {name.removeprefix(prefix) for name in archive.getnames()}
        pkg_info = archive.extractfile(prefix + "PKG-INFO").read().decode()
    # Headers and the CUDA sources too: the build above was CPU-only.
    needed = {path.relative_to(ROOT).as_posix() for path in (ROOT / "csrc").rglob("*")
              if path.is_file()}
    needed |= {"setup.py", "pyproject.toml", "MANIFEST.in", "README.md"}
    needed |= {path.relative_to(ROOT).as_posix() for path in (ROOT / "rnn_fused").rglob("*.py")}
    assert sorted(needed - members) == []
    # Nothing built in place (rnn_fused/_C*.so) and no tests cut off from their helpers.
    assert [name for name in members if name.endswith(".so") or name.startswith("tests/")] == []
    assert f"\nVersion: {version}\n" in pkg_info


# Runs outside the source tree, so that only the installed copy can be imported.
CHECK = textwrap.dedent("""
    import json
    import torch
    import rnn_fused

    torch.manual_seed(0)
    rnn = torch.nn.RNN(5, 8, num_layers=2, batch_first=True, dtype=torch.float64)
    fused = rnn_fused.FusedRNN.from_rnn(rnn)
    x = torch.randn(3, 7, 5, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, 8, dtype=torch.float64)
    results = []
    for module in (rnn, fused):
        out, h_n = module(x, h0)
        (out.sum() + h_n.square().sum()).backward()
        results.append([out, h_n, x.grad.clone()] + [p.grad for p in module.parameters()])
        x.grad = None
    torch.testing.assert_close(results[1], results[0])
    print(json.dumps({"file": rnn_fused.__file__, "version": rnn_fused.__version__}))
""")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "c++")) is None,
                    reason="no C++ compiler to build the extension with")
def test_sdist_installs_into_a_clean_venv_and_matches_nn_rnn(sdist, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # torch, pip and setuptools come from this environment through a .pth path
    # entry (no copy of torch); its own .pth files, rnn_fused's editable finder
    # among them, are not processed from there, and pip leaves its rnn_fused,
    # outside the new venv, installed.
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site_packages = Path(run([str(python), "-c", purelib], cwd=tmp_path).strip())
    (site_packages / "this_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    # --no-index: torch must come from here, never from a download; --no-cache-dir:
    # a wheel cached by an earlier run would skip the build under test. -O0: what
    # is tested is that the sources build, in a third of -O3's time.
    run([str(python), "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-index",
         "--no-cache-dir", str(sdist)], cwd=tmp_path, FORCE_CUDA="0", MAX_JOBS="2",
        CFLAGS="-O0")

    script = tmp_path / "check.py"
    script.write_text(CHECK)
    installed = json.loads(run([str(python), str(script)], cwd=tmp_path).splitlines()[-1])
    assert Path(installed["file"]).resolve().is_relative_to(site_packages.resolve())
    assert installed["version"] == in_tree_version()
