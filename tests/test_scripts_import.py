"""Every script in scripts/ imports against the package as it is: a renamed helper breaks the
script's test here, not a benchmark run hours later."""

from pathlib import Path

import pytest

SCRIPTS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "scripts").glob("*.py"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_imports(load_script, name):
    module = load_script(name)
    assert callable(getattr(module, "main", None)), f"scripts/{name}.py has no main()"
