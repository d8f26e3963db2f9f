"""Every role documents exactly the variables its defaults define, with the same default values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"
ROLE_NAMES = sorted(path.name for path in ROLES.iterdir() if (path / "meta" / "argument_specs.yml").exists())


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def test_every_role_has_argument_specs():
    roles = sorted(path.name for path in ROLES.iterdir() if path.is_dir())
    assert roles and roles == ROLE_NAMES


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_defaults_and_specs_list_the_same_variables(role):
    defaults = load(ROLES / role / "defaults" / "main.yml")
    options = load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options)


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_spec_defaults_match_the_defaults_file(role):
    defaults = load(ROLES / role / "defaults" / "main.yml")
    options = load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    for name, spec in options.items():
        assert spec.get("default") == defaults[name], f"{role}: {name} default differs between spec and defaults"
        assert spec.get("description"), f"{role}: {name} has no description"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_inputs_carry_the_role_prefix(role):
    defaults = load(ROLES / role / "defaults" / "main.yml")
    assert all(name.startswith(f"{role}_") for name in defaults)
