# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Make ``ansible_collections.tgstack.hybrid`` importable under plain pytest.

A checkout is not laid out as ``ansible_collections/tgstack/hybrid``, so a
temporary tree with a symlink to the checkout is built and Ansible's own
collection loader is installed over it and the installed collections (the
ones bundled in site-packages stay importable). Under ``ansible-test units``
the loader is already installed and this does nothing.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "tgstack"
NAME = "hybrid"


def _collections_root() -> Path:
    """Return a directory holding ``ansible_collections/tgstack/hybrid``."""
    parents = REPO_ROOT.parents
    if (REPO_ROOT.name, parents[0].name, parents[1].name) == (NAME, NAMESPACE, "ansible_collections"):
        return parents[2]
    root = Path(tempfile.mkdtemp(prefix="tgstack-hybrid-unit-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    link = root / "ansible_collections" / NAMESPACE / NAME
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO_ROOT, target_is_directory=True)
    return root


def _install_collection_loader() -> None:
    if any(isinstance(finder, _AnsibleCollectionFinder) for finder in sys.meta_path):
        return
    # Our tree goes first; sys.path (site-packages and its bundled
    # ansible_collections) is scanned after it.
    _AnsibleCollectionFinder(paths=[str(_collections_root())], scan_sys_paths=True)._install()


_install_collection_loader()
