"""The documentation: its code runs, every config key is in the generated reference, and
``mkdocs build --strict`` passes where MkDocs is installed (make docs)."""

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grokscope.config import TRAINERS
from grokscope.models import MODELS
from grokscope.reference import config_reference, field_comments
from grokscope.tasks import TASKS

ROOT = Path(__file__).parent.parent


def test_the_extending_page_code_defines_and_trains_a_task(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "extending.md").read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, "extending.md", "exec"), namespace)
        assert namespace["summary"].final_epoch == 50 and (tmp_path / "runs" / "square_sum" / "summary.json").is_file()
    finally:
        TASKS._classes.pop("square_sum", None)


def test_every_config_key_has_a_meaning_in_the_reference():
    reference = config_reference()
    for part, registry in (("task", TASKS), ("model", MODELS), ("train", TRAINERS)):
        for name in registry.names():
            cls = registry.get(name)
            comments = field_comments(cls)
            for field in dataclasses.fields(cls):
                assert comments.get(field.name), f"{part}.{field.name} of {name} has no comment to document it"
                assert f"`{part}.{field.name}`" in reference


@pytest.mark.skipif(shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None, reason="needs the docs extra")
def test_the_docs_build_strictly(tmp_path):
    result = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "-d", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "config" / "index.html").is_file()
    assert "train.stop_after_grok" in (tmp_path / "site" / "config" / "index.html").read_text()


def test_every_shipped_sweep_has_published_results_and_a_section():
    """docs/experiments.md has a section per shipped sweep (its heading names it), each has a
    results folder, every figure the page shows exists, and docs/results stays under 20 MB."""
    from grokscope.sweeps.spec import sweep_preset_names

    page = (ROOT / "docs" / "experiments.md").read_text()
    headings = re.findall(r"^## .*$", page, re.M)
    for name in sweep_preset_names():
        assert any(f"(`{name}`)" in h for h in headings), name
        assert (ROOT / "docs" / "results" / name).is_dir(), name
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page):
        assert (ROOT / "docs" / image).is_file(), image
    size = sum(p.stat().st_size for p in (ROOT / "docs" / "results").rglob("*") if p.is_file())
    assert size < 20e6, f"docs/results is {size / 1e6:.1f} MB"
