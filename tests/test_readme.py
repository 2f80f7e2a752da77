"""Every Python snippet of the README's Integrations section runs, in order."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def integration_snippets():
    text = README.read_text()
    section = text.split("## Integrations", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_integration_snippets_run(capsys):
    snippets = integration_snippets()
    assert len(snippets) == 5
    namespace = {}
    for snippet in snippets:
        exec(compile(snippet, str(README), "exec"), namespace)
    assert "FusedRNN(16, 32, batch_first=True)" in capsys.readouterr().out
