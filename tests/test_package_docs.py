"""Each package's docstring is its table of contents: it names every module the package holds,
so a module added, moved or removed leaves no stale description behind."""

import importlib
import pkgutil

import pytest

import spamops


def _packages() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(spamops.__path__, "spamops.") if m.ispkg]


@pytest.mark.parametrize("name", _packages())
def test_a_package_docstring_names_each_of_its_modules(name):
    package = importlib.import_module(name)
    doc = package.__doc__ or ""
    modules = [m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")]
    unnamed = [m for m in modules if f"``{m}``" not in doc and f":mod:`.{m}`" not in doc]
    assert not unnamed, f"{name}'s docstring does not name {unnamed}: say what they do there"
