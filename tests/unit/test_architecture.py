"""The import rules of docs/architecture.md, read from the source: which package may import which.

- the engine (`pdp`) imports no transport, no server and no client;
- inside it, the layers only look down: shared modules (errors, text, model, ...) import only
  each other; `pdp.language` the shared ones; `pdp.store` the language's public API;
  `pdp.audit` the public APIs of both; `pdp/__init__.py` and `pdp/cli.py` sit on top;
- the server (`pdp_server`) uses only public names: `pdp`, `pdp.language`, `pdp.store`,
  `pdp.audit`, each a name in that package's `__all__`;
- the client (`pdp_client`) imports neither the engine nor the server.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "pdp"
SERVER = ROOT / "server" / "pdp_server"
CLIENT = ROOT / "clients" / "python" / "src" / "pdp_client"
LAYERS = ("language", "store", "audit")
PUBLIC = ("pdp", "pdp.language", "pdp.store", "pdp.audit")
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


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [alias.name for alias in node.names]))
    return out


def _files(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*.py")) if "v1" not in p.relative_to(root).parts]


def _layer(module: str) -> str:
    """ "shared", one of LAYERS, or "top" (the facade and the CLI)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "cli":
        return "top"
    return parts[1] if parts[1] in LAYERS else "shared"


ALLOWED = {
    "shared": {"shared"},
    "language": {"shared", "language"},
    "store": {"shared", "store", "language-public"},
    "audit": {"shared", "audit", "language-public", "store-public"},
    "top": {"shared", "language-public", "store-public", "audit-public", "top"},
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
        for target, _ in _imports(path):
            if target.split(".")[0] in TRANSPORTS and (module, target) != LAZY_SERVE:
                bad.append(f"{path.relative_to(ROOT)}: imports {target}")
    assert bad == []


def test_the_engine_layers_only_look_down() -> None:
    bad = []
    for path in _files(ENGINE):
        module = _module(path, ENGINE, "pdp")
        layer = _layer(module)
        for target, _ in _imports(path):
            if target != "pdp" and not target.startswith("pdp."):
                continue
            kind = _kind(target, layer)
            if kind not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(ROOT)} ({layer}) imports {target} ({kind})")
    assert bad == []


def test_the_server_uses_only_public_names_of_the_engine() -> None:
    bad = []
    for path in _files(SERVER):
        for target, names in _imports(path):
            if target != "pdp" and not target.startswith("pdp."):
                continue
            if target not in PUBLIC:
                bad.append(f"{path.relative_to(ROOT)}: imports {target}, not a public package")
                continue
            public = set(importlib.import_module(target).__all__)
            bad += [
                f"{path.relative_to(ROOT)}: {target}.{n} is not in its __all__"
                for n in names
                if n not in public
            ]
    assert bad == []


def test_the_client_stands_alone() -> None:
    bad = [
        f"{path.relative_to(ROOT)}: imports {target}"
        for path in _files(CLIENT)
        for target, _ in _imports(path)
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
    """`pip install .` brings orjson and cachetools; the service's packages are the extra."""
    requires = metadata.requires("pdp") or []
    always = sorted(r.split(">")[0].split("=")[0] for r in requires if ";" not in r)
    assert always == ["cachetools", "orjson"]
    serve = " ".join(r for r in requires if 'extra == "serve"' in r)
    for name in ("grpcio", "flask", "granian", "waitress", "pdp-client"):
        assert name in serve, name
