"""The notebooks: committed without outputs, and each runs top to bottom on a few real faces.

Every notebook has one code cell tagged ``parameters`` (data path, number of
faces, epochs, output folder, model size). The runner inserts a cell after it
that overrides those values with CI-sized ones (:data:`CI_PARAMETERS`: 150
faces, one epoch, a tiny model, output in ``tmp_path``) and executes the
notebook cell by cell with its working directory in ``notebooks/``, as Jupyter
would. A failing cell fails the test with the notebook's name, the cell's
number and first line, and the error.

The kernel is this interpreter's ipykernel: a kernelspec pointing at
``sys.executable`` is written into a temporary folder, so a user-level
``python3`` kernelspec for another Python cannot shadow it. The notebooks import
the installed package (``pip install -e .``): no cell touches ``sys.path``, and
every cell reaches the library through its public names only (``import
faces_keras as fk`` and ``fk.<name>``, or ``from faces_keras import <name>``),
which :func:`public_api_problems` checks by parsing each code cell.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import faces_keras
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = [
    "01_prepare_faces_from_photos.ipynb",
    "02_present_dataset.ipynb",
    "03_train_per_label.ipynb",
    "04_train_all_label_and_compare.ipynb",
    "05_hyperband_tuning.ipynb",
    "06_threshold_tuning.ipynb",
    "07_reports_and_predictions.ipynb",
]
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
REQUIRED_PARAMETERS = ("DATA", "LIMIT", "OUT")
CELL_TIMEOUT = 300  # seconds for one cell; the slowest (a comparison of 3 tiny runs) takes ~30 s on 2 cores
KERNEL_NAME = "python3"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # IPython colours its tracebacks

# CI-sized values; each notebook gets those its parameters cell assigns.
CI_PARAMETERS = {
    "LIMIT": 150,  # faces
    "EPOCHS": 1,
    "MAX_EPOCHS": 2,  # Hyperband's largest budget: 2 trials
    "FILTERS": 8,
    "BLOCKS": 2,
    "LABELS": ["glasses", "smile"],
}
# Per notebook: the tuning notebook keeps its default OUT = None (a temporary folder it removes at the end).
CI_OVERRIDES = {"05_hyperband_tuning": {"OUT": None}}


class NotebookCellError(AssertionError):
    """A notebook cell raised; the message names the notebook, the cell and the error."""


# -- reading ---------------------------------------------------------------------------------------

def read_notebook(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def parameters_cell_index(nb: nbformat.NotebookNode) -> int:
    """Index of the one code cell tagged ``parameters``; AssertionError if none or several."""
    tagged = [i for i, cell in enumerate(nb.cells)
              if cell.cell_type == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"expected one code cell tagged {PARAMETERS_TAG!r}, found {len(tagged)}"
    return tagged[0]


def assigned_names(source: str) -> list[str]:
    """Names a cell assigns at top level (``NAME = ...``), in order."""
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            names += [target.id for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return names


def inject_parameters(nb: nbformat.NotebookNode, values: dict) -> list[str]:
    """Insert a cell after the parameters cell setting those of ``values`` it assigns; return their names."""
    index = parameters_cell_index(nb)
    names = [name for name in assigned_names(nb.cells[index].source) if name in values]
    source = "# Parameters injected by tests/test_notebooks.py\n" + \
        "\n".join(f"{name} = {values[name]!r}" for name in names)
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    nb.cells.insert(index + 1, cell)
    return names


# -- the public API only ------------------------------------------------------------------------------

PUBLIC = frozenset(faces_keras.__all__)  # lazy: importing faces_keras imports no Keras
PACKAGE = "faces_keras"
MAGIC = re.compile(r"^\s*[%!]")  # IPython magics and shell escapes are not Python


def python_lines(source: str) -> str:
    """A code cell's source with its IPython magic and shell lines blanked (line numbers kept)."""
    return "\n".join("" if MAGIC.match(line) else line for line in source.splitlines())


def public_api_problems(source: str) -> list[str]:
    """What in one code cell goes around the public API: ``sys.path``, deep or unknown imports.

    Allowed: ``import faces_keras`` (any alias) and attributes of it that are in
    ``faces_keras.__all__``, and ``from faces_keras import <public names>``.
    Anything under ``faces_keras.<module>`` is a deep import.
    """
    problems = [f"line {n}: sets up sys.path" for n, line in enumerate(source.splitlines(), 1)
                if "sys.path" in line]
    tree = ast.parse(python_lines(source))
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE:
                    aliases.add(alias.asname or PACKAGE)
                elif alias.name.startswith(PACKAGE + "."):
                    problems.append(f"line {node.lineno}: deep import `import {alias.name}`")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(PACKAGE + "."):
                problems.append(f"line {node.lineno}: deep import `from {node.module} import ...`")
            elif node.module == PACKAGE:
                problems += [f"line {node.lineno}: `from faces_keras import {alias.name}` is not public"
                             for alias in node.names if alias.name not in PUBLIC]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr not in PUBLIC and node.attr not in ("__version__", "__file__")):
            problems.append(f"line {node.lineno}: `{node.value.id}.{node.attr}` is not a public name")
    return problems


# -- running ---------------------------------------------------------------------------------------

def this_interpreter_kernels(folder: Path) -> KernelSpecManager:
    """A kernelspec manager that knows one ``python3`` kernel: ipykernel on ``sys.executable``."""
    spec_dir = folder / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} (tests)",
        "language": "python",
    }))
    return KernelSpecManager(kernel_dirs=[str(folder)])


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return lines[0] if lines else "(empty)"


def run_notebook(path: Path, kernels: KernelSpecManager, *, parameters: dict | None = None,
                 cwd: Path = NOTEBOOKS_DIR, timeout: int = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """Execute ``path`` cell by cell (after injecting ``parameters``); return the executed notebook.

    Raises :class:`NotebookCellError` at the first cell that fails; later cells do not run.
    """
    nb = read_notebook(path)
    if parameters is not None:
        inject_parameters(nb, parameters)
    manager = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernels)
    client = NotebookClient(nb, km=manager, timeout=timeout, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(cwd)}})
    code_cells = 0
    with client.setup_kernel(cleanup_kc=True):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            code_cells += 1
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as exc:
                raise NotebookCellError(
                    f"{path.name}: code cell {code_cells} (cell {index} of the executed notebook, "
                    f"starting {_first_line(cell.source)!r}) failed: {exc.ename}: {exc.evalue}\n"
                    + ANSI_ESCAPE.sub("", str(exc))
                ) from None
    return nb


@pytest.fixture(scope="module")
def kernels(tmp_path_factory) -> KernelSpecManager:
    return this_interpreter_kernels(tmp_path_factory.mktemp("kernels"))


# -- the committed notebooks -----------------------------------------------------------------------

def test_every_step_has_its_notebook():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = read_notebook(path)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs or execution counts; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_first(path):
    nb = read_notebook(path)
    index = parameters_cell_index(nb)
    first_code = next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code")
    assert index == first_code, f"{path.name}: the parameters cell must be the first code cell"
    names = assigned_names(nb.cells[index].source)
    missing = [name for name in REQUIRED_PARAMETERS if name not in names]
    assert not missing, f"{path.name}: the parameters cell does not set {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_uses_only_the_public_api(path):
    nb = read_notebook(path)
    problems = [f"code cell {i} ({_first_line(cell.source)!r}): {problem}"
                for i, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1)
                for problem in public_api_problems(cell.source)]
    assert not problems, f"{path.name} goes around the public API:\n" + "\n".join(problems)
    uses = [cell for cell in nb.cells if cell.cell_type == "code" and "faces_keras" in cell.source]
    assert uses, f"{path.name} does not import faces_keras"


def test_public_api_check_catches_what_goes_around_it():
    assert public_api_problems("import faces_keras as fk\n%matplotlib inline\nfk.train\nfk.__version__") == []
    assert public_api_problems("from faces_keras import Dataset, prepare_dataset") == []
    caught = {
        "import sys\nsys.path.insert(0, '..')": "sys.path",
        "from faces_keras.data.present import new_figure": "deep import",
        "import faces_keras.training.train as t": "deep import",
        "from faces_keras import _PUBLIC": "not public",
        "import faces_keras as fk\nfk.data.present.new_figure": "`fk.data` is not a public name",
        "import faces_keras\nfaces_keras.not_a_name()": "`faces_keras.not_a_name` is not a public name",
    }
    for source, expected in caught.items():
        problems = public_api_problems(source)
        assert len(problems) == 1 and expected in problems[0], (source, problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, kernels, data_dir, tmp_path):
    parameters = {**CI_PARAMETERS, "DATA": str(data_dir), "OUT": str(tmp_path / "out"),
                  **CI_OVERRIDES.get(path.stem, {})}
    nb = run_notebook(path, kernels, parameters=parameters)
    injected = next(cell for cell in nb.cells if INJECTED_TAG in cell.metadata.get("tags", []))
    assert "LIMIT = 150" in injected.source and f"OUT = {parameters['OUT']!r}" in injected.source
    shown = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
             if o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    assert shown, f"{path.name}: no figure was displayed"
    assert not (NOTEBOOKS_DIR / "runs").exists(), "a notebook wrote into notebooks/runs instead of OUT"
    if parameters["OUT"] is None:  # the notebook made a temporary folder: it must be gone
        last = [cell for cell in nb.cells if cell.cell_type == "code"][-1]
        printed = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
        assert printed.startswith("removed "), f"{path.name}: the last cell did not clean up ({printed!r})"
        assert not Path(printed.split(" ", 1)[1].strip()).exists()


# -- the runner itself -------------------------------------------------------------------------------

def test_runner_uses_this_interpreter_and_parameters(kernels, tmp_path):
    path = tmp_path / "probe.ipynb"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("LIMIT = None\nOUT = 'x'", metadata={"tags": [PARAMETERS_TAG]}),
        nbformat.v4.new_code_cell("import os, sys\nprint(sys.executable)\nprint(os.getcwd())\nprint(LIMIT, OUT)"),
    ])
    nbformat.write(nb, path)
    executed = run_notebook(path, kernels, parameters={"LIMIT": 7, "OUT": "y", "EPOCHS": 3}, cwd=tmp_path)
    assert [c.source.splitlines()[-1] for c in executed.cells[:2]] == ["OUT = 'x'", "OUT = 'y'"]
    assert "EPOCHS" not in executed.cells[1].source  # only what the parameters cell sets
    printed = executed.cells[2].outputs[0].text.splitlines()
    assert Path(printed[0]).resolve() == Path(sys.executable).resolve()
    assert Path(printed[1]).resolve() == tmp_path.resolve()
    assert printed[2] == "7 y"


def test_runner_fails_on_a_broken_cell(kernels, tmp_path):
    path = tmp_path / "broken.ipynb"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A notebook with a bug"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("y = x + 1\nraise ValueError(f'boom {y}')"),
        nbformat.v4.new_code_cell("open('after.txt', 'w').write('ran')"),
    ])
    nbformat.write(nb, path)
    with pytest.raises(NotebookCellError) as raised:
        run_notebook(path, kernels, cwd=tmp_path)
    message = str(raised.value)
    assert "broken.ipynb: code cell 2" in message and "'y = x + 1'" in message
    assert "ValueError: boom 2" in message
    assert not (tmp_path / "after.txt").exists(), "cells after the failing one must not run"
