"""The layer order holds: no module imports a higher layer, no two modules import each other.

The last two tests break a copy of the package on purpose and check that the checker sees it.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import swalab
from swalab.testing.layers import LAYERS, check_layers, layer_of

PACKAGE = Path(swalab.__file__).resolve().parent


def test_package_keeps_its_layers():
    assert [v.message for v in check_layers(PACKAGE)] == []


def test_every_layer_is_named_and_ordered_as_documented():
    names = [name for name, _ in LAYERS]
    assert names == [
        "utilities",
        "theory",
        "envs",
        "swi",
        "llm",
        "guard",
        "experiments",
        "analysis",
        "cli",
    ]
    assert layer_of("swalab.testing.layers") == layer_of("swalab.cli")
    assert layer_of("swalab.swi.engine") < layer_of("swalab.llm.runner")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(PACKAGE, tmp_path / "swalab"))


def test_an_upward_import_is_caught(copy: Path):
    target = copy / "theory" / "payoffs.py"
    lazy = "\n\ndef _late():\n    from swalab.analysis import report\n"  # lazy imports count
    target.write_text(target.read_text() + lazy)
    found = check_layers(copy)
    upward = [v.message for v in found if v.kind == "upward"]
    assert upward == [
        "swalab.theory.payoffs (theory) imports swalab.analysis.report (analysis), a higher layer"
    ]


def test_a_cycle_is_caught(copy: Path):
    target = copy / "swi" / "scorers.py"  # policy imports scorers; now scorers imports policy
    target.write_text(target.read_text() + "\nfrom swalab.swi import policy  # noqa\n")
    found = check_layers(copy)
    assert [v.message for v in found] == ["import cycle: swalab.swi.policy ↔ swalab.swi.scorers"]


def test_an_unplaced_module_is_caught(copy: Path):
    (copy / "extra.py").write_text('"""Somewhere new."""\n')
    assert [v.kind for v in check_layers(copy)] == ["unplaced"]


def test_import_swalab_llm_loads_no_simulator():
    code = (
        "import sys, swalab.llm; "
        "print(sorted(m for m in sys.modules if m.startswith(('swalab.swi', 'numba'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
