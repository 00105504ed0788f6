"""The shape of the codebase: dependency directions (DESIGN §6) and the public surface."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import atoma_actors

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, node.module or ""]).rstrip("."))
            elif node.module:
                found.add(node.module)
    return found


def python_files(*parts: str) -> list[Path]:
    return sorted((ROOT.joinpath(*parts)).rglob("*.py"))


RULES = [
    # (folder, forbidden import prefixes, why)
    (
        ("atoma_actors", "protocol"),
        (
            "atoma_actors.core",
            "atoma_actors.runtime",
            "atoma_actors.client",
            "atoma_actors.sync",
            "atoma_backend",
        ),
        "the protocol imports nothing else of ours",
    ),
    (
        ("atoma_actors", "core"),
        (
            "atoma_actors.runtime",
            "atoma_actors.client",
            "atoma_actors.sync",
            "atoma_backend",
            "atoma_server",
            "pykka",
        ),
        "core is pure: no actors, no client, no backends",
    ),
    (
        ("atoma_actors", "runtime"),
        ("atoma_actors.client", "atoma_actors.sync", "atoma_backend", "atoma_server"),
        "the runtime never reaches up into the client or out to backends",
    ),
    (
        ("atoma_actors", "client"),
        ("atoma_actors.sync", "atoma_backend", "atoma_server"),
        "the client never imports sync or a backend",
    ),
    (
        ("backends",),
        (
            "atoma_actors.runtime",
            "atoma_actors.client",
            "atoma_actors.testing",
            "atoma_actors.sync",
        ),
        "backends depend only on atoma_actors.protocol and atoma_actors.core",
    ),
]


@pytest.mark.parametrize(("folder", "forbidden", "why"), RULES, ids=lambda v: str(v)[:30])
def test_dependency_direction(folder, forbidden, why):
    files = [p for p in python_files(*folder) if "tests" not in p.parts]
    assert files, f"no python files under {folder}"
    offenders = [
        f"{p.relative_to(ROOT)} imports {name}"
        for p in files
        for name in imports_of(p)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]
    assert offenders == [], why


def test_top_level_imports_do_not_load_the_runtime_for_backends():
    import subprocess
    import sys

    code = (
        "import sys, atoma_actors.protocol, atoma_actors.core.query;"
        "print(any(m.startswith('atoma_actors.runtime') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_public_surface_is_sorted_and_exact():
    names = atoma_actors.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(atoma_actors, name) is not None
    public = {n for n in dir(atoma_actors) if not n.startswith("_")}
    public -= {"annotations", "logging", "protocol", "core", "runtime", "client", "testing"}
    assert public - {"TYPE_CHECKING", "Any"} <= set(names)


def test_every_module_has_a_docstring():
    missing = [
        str(p.relative_to(ROOT))
        for p in python_files("atoma_actors")
        if ast.get_docstring(ast.parse(p.read_text())) is None and p.name != "__init__.py"
    ]
    assert missing == []


def test_py_typed_is_shipped():
    assert (ROOT / "atoma_actors" / "py.typed").exists()
