"""The built collection holds what users need, leaves out the lab, and works once installed."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from labhost import PROJECT, run

SHIPPED = ["MANIFEST.json", "README.md", "meta/runtime.yml", "playbooks/site.yml",
           "plugins/filter/postgresql.py", "roles/timescaledb/tasks/main.yml",
           "roles/timescaledb/meta/argument_specs.yml", "roles/gateway/tasks/main.yml",
           "gateway/tgstack_gateway/__main__.py"]  # fmt: skip
LEFT_OUT = ["lab/", "molecule/", "tests/", ".ci/", "bench/", "inventories/lab/", "requirements/", ".venv/",
            ".ansible/", ".config/"]  # fmt: skip


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    built = run(["ansible-galaxy", "collection", "build", "--output-path", str(out), str(PROJECT)])
    assert built.returncode == 0, built.stdout + built.stderr
    return out / "tgstack-hybrid-0.1.0.tar.gz"


def test_artifact_holds_roles_plugins_playbooks_and_leaves_out_lab_files(artifact):
    with tarfile.open(artifact) as tar:
        names = tar.getnames()
    for path in SHIPPED:
        assert path in names, f"{path} missing from the artifact"
    if (PROJECT / "gateway").is_dir():
        assert any(name.startswith("gateway/") for name in names)
    for prefix in LEFT_OUT:
        leaked = [name for name in names if name.startswith(prefix) or name == prefix.rstrip("/")]
        assert not leaked, f"{prefix} should not be in the artifact: {leaked[:5]}"


def test_installed_artifact_runs_the_role_by_fqcn(artifact, tmp_path, lab_container):
    collections = tmp_path / "collections"
    # only the installed artifact (and the community collections it depends on), not this checkout, also
    # when the caller's environment points ANSIBLE_COLLECTIONS_PATH at it (ansible-galaxy would then
    # find the collection installed already and skip the artifact)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env |= {"ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1"}
    installed = run(
        ["ansible-galaxy", "collection", "install", "--no-deps", "-p", str(collections), str(artifact)],
        cwd=tmp_path,
        env=env,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- name: Use the installed collection\n  hosts: all\n  roles:\n    - role: tgstack.hybrid.timescaledb\n"
    )
    doc = run(["ansible-doc", "-t", "role", "tgstack.hybrid.timescaledb"], env=env, cwd=tmp_path)
    assert doc.returncode == 0 and "timescaledb_package_source" in doc.stdout, doc.stderr
    # check mode on a fresh host: the role runs from the artifact, preflight passes, nothing fails
    played = run(
        ["ansible-playbook", "-i", f"{lab_container},", "-c", "community.docker.docker", "--check", str(playbook)],
        env=env,
        cwd=tmp_path,
    )
    assert played.returncode == 0, played.stdout[-3000:] + played.stderr
    assert "tgstack.hybrid.timescaledb : Preflight" in played.stdout
    assert f"{lab_container}" in played.stdout and "failed=0" in played.stdout
