"""examples/tour.ipynb runs top to bottom in a fresh kernel (the one of this Python), and is stored without outputs."""

import json
from pathlib import Path

import nbformat
from nbclient import NotebookClient

TOUR = Path(__file__).parent.parent / "examples" / "tour.ipynb"


def test_the_tour_is_stored_without_outputs():
    for cell in json.loads(TOUR.read_text())["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_the_tour_runs_top_to_bottom(tmp_path):
    notebook = nbformat.read(TOUR, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "grokked at epoch" in text and "mean-ablated" in text and "verdict:" in text
    assert (tmp_path / "runs" / "tour" / "analysis.json").is_file()
