"""Fixtures for the data-layer tests: the real dataset copies, and a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

#: Read-only reference copies of the real datasets, next to the repository (never modified).
SHARED_DATASETS = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder of real dataset copies, used as a (read-only) data cache."""
    path = SHARED_DATASETS.resolve()
    if not (path / "msd-hippocampus").is_dir():
        pytest.skip(f"the real dataset copies are not available at {path}")
    return path


@pytest.fixture
def copy_cases(tmp_path, shared_datasets):
    """Copy a few cases of a real dataset into a fresh cache under tmp_path; return the cache."""
    from medseg_course.data.registry import dataset_info

    root = tmp_path / "cache"

    def copy(name: str, case_ids) -> Path:
        info = dataset_info(name)
        for case in case_ids:
            for rel in (*info.files(case), *info.dirs(case)):
                src, dst = shared_datasets / info.folder / rel, root / info.folder / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dst)
                else:
                    shutil.copyfile(src, dst)
        return root

    return copy


@pytest.fixture(scope="session")
def shared_cases(shared_datasets):
    """Case ids of a split that the shared copy holds: shared_cases(name, split) -> list."""
    from medseg_course.data.download import verify_dataset
    from medseg_course.data.registry import dataset_info

    def cases(name: str, split: str = "all") -> list[str]:
        info = dataset_info(name)
        on_disk = set(verify_dataset(info, root=shared_datasets, checksums=False).present)
        return [c for c in info.splits[split] if c in on_disk]

    return cases


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        self.server.requests.append(self.path)


@pytest.fixture
def http_server(tmp_path):
    """Serve tmp_path/'www' on 127.0.0.1 only; yields (folder, base_url, list of requested paths)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}", server.requests
    finally:
        server.shutdown()
        server.server_close()
