"""Badges and install cells are generated from one URL, and every notebook is in sync."""

from pathlib import Path

import nbformat

from medseg_course import course, notebook_links

ROOT = Path(__file__).resolve().parents[1]


def test_every_notebook_and_the_readme_are_in_sync():
    stale = notebook_links.sync_all(ROOT, check=True)
    assert stale == [], f"run `medseg-course sync-notebooks`; out of sync: {stale}"


def test_links_derive_from_the_canonical_url():
    assert notebook_links.colab_url("00_welcome").endswith(
        "medseg-course/medseg-course/blob/main/notebooks/00_welcome.ipynb")
    assert "labpath=notebooks%2F00_welcome.ipynb" in notebook_links.binder_url("00_welcome")
    assert course.REPO_URL in notebook_links.install_source()


def test_sync_repairs_a_stale_notebook(tmp_path):
    nb = nbformat.read(ROOT / "notebooks" / "00_welcome.ipynb", as_version=4)
    nb.cells[0].source = "[![Open in Colab](old)](https://example.org/elsewhere)"
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="stale output")]
    assert notebook_links.sync_notebook(nb, "00_welcome") is True
    assert nb.cells[0].source == notebook_links.badges_markdown("00_welcome")
    assert nb.cells[1].outputs == []
    assert notebook_links.sync_notebook(nb, "00_welcome") is False


def test_notebooks_in_the_folder_are_the_course_notebooks():
    on_disk = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert on_disk == sorted(nb.stem for nb in course.NOTEBOOKS)
