"""pdp_server.config: each setting defined once, read from PDP_* variables and `pdp serve` flags,
handed to the workers as a file, and documented by the same definition."""

from __future__ import annotations

import argparse
import os
import re
import stat
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from pdp_server.config import Config, ConfigError, add_arguments, markdown_table

DOCS = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def _flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_docs_table_is_the_one_the_settings_make() -> None:
    text = DOCS.read_text()
    found = re.search(
        r"<!-- settings: made by pdp_server.config.markdown_table\(\) -->\n(.*?)"
        r"<!-- end of settings -->",
        text,
        re.S,
    )
    assert found is not None, "docs/serving.md lost its settings table"
    assert found.group(1) == markdown_table(), "regenerate it with markdown_table()"


def test_every_field_is_a_setting_with_its_own_variable_and_flag() -> None:
    names = [f.name for f in fields(Config)]
    variables = [f.metadata["env"] for f in fields(Config)]
    assert all(v.startswith("PDP_") for v in variables)
    assert len(set(variables)) == len(variables) == len(names)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flagged = {a.dest for a in parser._actions if a.dest != "help"}
    secrets = {f.name for f in fields(Config) if not f.metadata["flag"]}
    assert secrets == {"admin_token", "authzen_token"}
    assert flagged == set(names) - secrets  # a secret never goes on a command line


def test_defaults_then_variables_then_flags() -> None:
    assert Config.from_sources({}, _flags()).workers == 1
    env = {"PDP_WORKERS": "3", "PDP_STORE": "/srv/store", "PDP_BODY_TIMEOUT": "2.5"}
    config = Config.from_sources(env, _flags())
    assert (config.workers, config.store, config.body_timeout) == (3, "/srv/store", 2.5)
    config = Config.from_sources(env, _flags("--workers", "2", "--grpc-threads", "8"))
    assert (config.workers, config.grpc_threads, config.store) == (2, 8, "/srv/store")
    assert Config.from_sources({"PDP_DECISION_LOG": ""}, _flags()).decision_log is None


@pytest.mark.parametrize(
    ("env", "argv", "message"),
    [
        ({"PDP_WORKERS": "0"}, (), "PDP_WORKERS: must be at least 1, not '0'"),
        ({}, ("--workers", "two"), "--workers: must be a whole number, not 'two'"),
        ({}, ("--body-timeout", "inf"), "--body-timeout: must be a finite number, not negative"),
        ({"PDP_CACHE_SIZE": "-1"}, (), "PDP_CACHE_SIZE: must be a finite number, not negative"),
        ({}, ("--decision-log-sample", "1.5"), "--decision-log-sample: must be between 0 and 1"),
    ],
)
def test_a_bad_value_names_where_it_came_from(
    env: dict[str, str], argv: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config.from_sources(env, _flags(*argv))


def test_the_store_has_no_default() -> None:
    with pytest.raises(ConfigError, match=r"--store \(or PDP_STORE\): required"):
        Config.from_sources({}, _flags()).check()
    Config.from_sources({}, _flags("--store", "examples/store")).check()


def test_admin_token_sources_in_order(tmp_path: Path) -> None:
    flag_file, env_file = tmp_path / "flag", tmp_path / "env"
    flag_file.write_text("from-flag\n")
    env_file.write_text("from-env-file\n")
    files = {"PDP_ADMIN_TOKEN_FILE": str(env_file)}
    token = {"PDP_ADMIN_TOKEN": "from-env"}
    by_flag = _flags("--admin-token-file", str(flag_file))
    assert Config.from_sources({**token, **files}, by_flag).admin_token == "from-flag"
    assert Config.from_sources({**token, **files}, _flags()).admin_token == "from-env"
    assert Config.from_sources(files, _flags()).admin_token == "from-env-file"
    with pytest.raises(ConfigError, match="--admin-token-file: cannot read"):
        Config.from_sources({}, _flags("--admin-token-file", str(tmp_path / "none")))
    assert "from-env" not in repr(Config.from_sources(token, _flags()))


def test_the_workers_get_the_resolved_configuration_privately(tmp_path: Path) -> None:
    config = Config.from_sources(
        {"PDP_ADMIN_TOKEN": "secret", "PDP_STORE": "s"}, _flags("--max-batch", "7")
    )
    path = tmp_path / "config.json"
    config.save(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Config.load(str(path)) == config
    path.chmod(0o644)  # a file already there keeps none of its mode
    config.save(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("untouched")
    path.unlink()
    path.symlink_to(elsewhere)  # nor is a link followed: it is replaced
    config.save(str(path))
    assert elsewhere.read_text() == "untouched" and not path.is_symlink()
    assert Config.load(str(path)) == config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "elsewhere"]


def test_importing_the_server_modules_starts_nothing() -> None:
    """No thread, no signal handler, no socket: a worker is built by create_app() alone."""
    code = (
        "import signal, threading\n"
        "before = signal.getsignal(signal.SIGTERM)\n"
        "import pdp_server.worker, pdp_server.main, pdp_server.service\n"
        "import pdp_server.http_sidecar, pdp_server.grpc_service, pdp_server.admin\n"
        "print(threading.active_count(), signal.getsignal(signal.SIGTERM) is before)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDP_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == ["1", "True"]
