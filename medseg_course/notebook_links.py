"""Badges, the Colab install cell and notebook metadata, generated from one repository URL.

Every notebook opens with two generated cells:

1. a Markdown cell with "Open in Colab" and "Launch Binder" badges for that notebook;
2. a code cell that installs the course package only when it is missing (Colab, Kaggle).

Both derive from :data:`medseg_course.course.REPO_URL`. ``medseg-course sync-notebooks`` rewrites
them (and the badge block in README.md); ``--check`` only reports notebooks that are out of sync,
which the test suite uses.

Introduced in 00_welcome.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import nbformat

from medseg_course.course import BRANCH, NOTEBOOKS, REPO_URL

BADGE_CELL_ID = "medseg-badges"
INSTALL_CELL_ID = "medseg-install"
README_START = "<!-- badges:start -->"
README_END = "<!-- badges:end -->"

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"


def _repo_path(repo_url: str = REPO_URL) -> str:
    """``owner/name`` from a GitHub URL."""
    prefix = "https://github.com/"
    if not repo_url.startswith(prefix):
        raise ValueError(f"REPO_URL must be a GitHub URL starting with {prefix!r}, got {repo_url!r}")
    return repo_url[len(prefix):].rstrip("/")


def colab_url(stem: str) -> str:
    """Colab link that opens ``notebooks/<stem>.ipynb`` from the canonical repository."""
    return f"https://colab.research.google.com/github/{_repo_path()}/blob/{BRANCH}/notebooks/{stem}.ipynb"


def binder_url(stem: str | None = None) -> str:
    """Binder link, opening JupyterLab on ``notebooks/<stem>.ipynb`` (or the notebooks folder)."""
    target = f"notebooks/{stem}.ipynb" if stem else "notebooks"
    return f"https://mybinder.org/v2/gh/{_repo_path()}/{BRANCH}?labpath={quote(target, safe='')}"


def badges_markdown(stem: str | None = None) -> str:
    """The badge line for one notebook (or, with ``stem=None``, for the README)."""
    colab = colab_url(stem or NOTEBOOKS[0].stem)
    return (f"[![Open in Colab]({COLAB_BADGE})]({colab}) "
            f"[![Launch Binder]({BINDER_BADGE})]({binder_url(stem)})")


def install_source() -> str:
    """Source of the install cell: installs the package only when it cannot be imported."""
    return (
        "# Colab and Kaggle: install the course package if it is missing.\n"
        "# (Binder and a local install already have it, and then this cell does nothing.)\n"
        "import importlib.util\n"
        "\n"
        "if importlib.util.find_spec(\"medseg_course\") is None:\n"
        f"    %pip install --quiet \"medseg-course @ git+{REPO_URL}@{BRANCH}\""
    )


def sync_notebook(nb: nbformat.NotebookNode, stem: str) -> bool:
    """Put the generated cells and metadata into ``nb``; return True if anything changed."""
    before = nbformat.writes(nb)
    badge = nbformat.v4.new_markdown_cell(badges_markdown(stem), id=BADGE_CELL_ID)
    install = nbformat.v4.new_code_cell(install_source(), id=INSTALL_CELL_ID)
    install.metadata["tags"] = ["setup"]
    cells = [c for c in nb.cells if c.get("id") not in {BADGE_CELL_ID, INSTALL_CELL_ID}]
    nb.cells = [badge, install] + cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata["medseg"] = {"notebook": stem}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nbformat.writes(nb) != before


def sync_readme(text: str) -> str:
    """Replace the README's badge block with the generated one."""
    if README_START not in text or README_END not in text:
        raise ValueError(f"README.md needs a {README_START} ... {README_END} block for the badges")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{badges_markdown()}\n{README_END}{tail}"


def sync_all(root: str | Path = ".", check: bool = False) -> list[str]:
    """Sync every course notebook and README.md under ``root``.

    Parameters
    ----------
    root : path
        The repository root (holding ``notebooks/`` and ``README.md``).
    check : bool
        Only report; write nothing.

    Returns
    -------
    list of str
        Paths that were (or, with ``check``, would be) rewritten.
    """
    root = Path(root)
    changed = []
    for entry in NOTEBOOKS:
        path = root / "notebooks" / entry.filename
        if not path.exists():
            raise FileNotFoundError(f"{path} is listed in medseg_course.course.NOTEBOOKS but missing")
        nb = nbformat.read(path, as_version=4)
        if sync_notebook(nb, entry.stem):
            changed.append(str(path))
            if not check:
                nbformat.write(nb, path)
    readme = root / "README.md"
    if readme.exists():
        text = readme.read_text(encoding="utf-8")
        new = sync_readme(text)
        if new != text:
            changed.append(str(readme))
            if not check:
                readme.write_text(new, encoding="utf-8")
    return changed
