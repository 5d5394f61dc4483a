"""The library's public names: each one importable from `reconciler`, none loaded before use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import reconciler


def test_every_public_name_resolves_to_its_module() -> None:
    assert set(reconciler.__all__) == {"__version__", *reconciler._WHERE}
    for name in reconciler._WHERE:
        value = getattr(reconciler, name)
        assert value.__module__.startswith(reconciler._WHERE[name]), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        reconciler.nope  # noqa: B018


def test_importing_the_package_loads_no_nats_and_no_yaml() -> None:
    code = ("import sys, reconciler; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nats', 'yaml', "
            "'structlog') or m.startswith('reconciler.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
