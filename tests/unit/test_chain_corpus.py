"""Run the evaluation-chain corpus (tests/corpus/chain/*.json) through a loaded store.

Each file holds a topic's stores (a path relative to the version directory mapped to its JSON
content) and its cases; each case decides one request against one store and cites the IAM User
Guide sentence it follows. The format is spec-14 section 6. Stores are written once per test
session, as `<tmp>/<store>/versions/1/...` plus `current -> versions/1`, because a store is what
pdp decides against and writing one per case would make the corpus slow for no gain.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

import pdp
from pdp.store.activation import load_store

CHAIN_DIR = Path(__file__).resolve().parent.parent / "corpus" / "chain"
REASONS = {"allowed", "explicitDeny", "implicitDeny"}
LAYERS = {"rcp", "scp", "resource", "identity", "boundary", "session"}


def _load_files() -> dict[str, dict[str, Any]]:
    """Every chain file by name; a malformed file fails collection with its name."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(CHAIN_DIR.glob("*.json")):
        try:
            files[path.name] = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise AssertionError(f"{path.name}: not valid JSON: {exc}") from None
    return files


FILES = _load_files()
RAW_CASES = [(name, case) for name, content in FILES.items() for case in content.get("cases", [])]
CASES = [pytest.param(name, case, id=case["id"]) for name, case in RAW_CASES]


def test_chain_corpus_is_large_enough_and_ids_are_unique() -> None:
    """The issue asks for at least 300 new chain cases; ids are unique across all files."""
    ids = [case["id"] for _, case in RAW_CASES]
    assert len(ids) >= 300, f"{len(ids)} chain cases"
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, duplicates


@pytest.mark.parametrize("name", sorted(FILES))
def test_chain_file_is_well_formed(name: str) -> None:
    """Every case names a store of its file, a known reason, known layers and a cited doc."""
    content = FILES[name]
    assert isinstance(content.get("topic"), str) and content["topic"], f"{name}: topic"
    stores = content.get("stores")
    assert isinstance(stores, dict) and stores, f"{name}: stores"
    for store, files in stores.items():
        assert isinstance(files, dict) and files, f"{name}: stores.{store}"
        for rel in files:
            assert not rel.startswith("/") and ".." not in rel.split("/"), f"{name}: {rel}"
    for i, case in enumerate(content["cases"]):
        where = f"{name}: cases[{i}] ({case.get('id')})"
        assert case["store"] in stores, f"{where}: unknown store {case['store']!r}"
        assert case["expected"] in REASONS, where
        assert set(case.get("blocked_by", [])) <= LAYERS, where
        assert re.search(r"\(https://[^ )]+\)$", case["doc"]), f"{where}: doc cites no URL"
        for key in ("principal", "principal_type", "action", "resource"):
            assert isinstance(case["request"].get(key), str), f"{where}: request.{key}"


@pytest.fixture(scope="session")
def store_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Each store of each file written once; keyed by (file, store) since names may repeat."""
    base = tmp_path_factory.mktemp("chain")
    roots: dict[tuple[str, str], Path] = {}
    for name, content in FILES.items():
        for store, files in content["stores"].items():
            root = base / Path(name).stem / store
            version = root / "versions" / "1"
            for rel, document in files.items():
                target = version / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(document))
            os.symlink("versions/1", root / "current")
            roots[(name, store)] = root
    return roots


_SNAPSHOTS: dict[tuple[str, str], Any] = {}


def _snapshot(roots: dict[tuple[str, str], Path], name: str, store: str) -> Any:
    """Load each store once (a load compiles and validates the whole version)."""
    key = (name, store)
    if key not in _SNAPSHOTS:
        _SNAPSHOTS[key] = load_store(roots[key])
    return _SNAPSHOTS[key]


def _request(raw: dict[str, Any]) -> Any:
    session = raw.get("session")
    extra: dict[str, Any] = {}
    if session is not None:
        extra["session"] = pdp.Session.from_dict(session)  # type: ignore[attr-defined,unused-ignore]
    return pdp.Request(
        principal=raw["principal"],
        action=raw["action"],
        resource=raw["resource"],
        context=raw.get("context") or {},
        principal_type=raw["principal_type"],
        **extra,
    )


@pytest.mark.parametrize(("name", "case"), CASES)
def test_chain_case(
    name: str, case: dict[str, Any], store_roots: dict[tuple[str, str], Path]
) -> None:
    snapshot = _snapshot(store_roots, name, case["store"])
    decision = snapshot.decide(_request(case["request"]))
    assert decision.errors == (), f"{case['id']}: {decision.errors}"
    assert decision.reason == case["expected"], f"{case['id']}: {case['doc']}"
    if "blocked_by" in case:
        assert decision.blocked_by == tuple(case["blocked_by"]), case["id"]
