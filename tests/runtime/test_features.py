"""``FEATURES`` names the features served; a bad entry is refused with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runtime.features import FeatureError, load_features
from runtime.settings import Settings
from schema.export import BANK
from tests.runtime.processes import ROOT, clean_env

DEFAULT = str(Settings.model_fields["features"].default)


def test_the_default_is_the_bank_whose_sdl_is_committed() -> None:
    features = load_features(DEFAULT)
    assert features.features == BANK
    assert features.names == ("accounts", "transfers", "ledger")


def test_everything_is_derived_from_the_features() -> None:
    features = load_features(DEFAULT)
    assert features.read_sides.read_models == (
        "accounts",
        "account_statement",
        "transfers",
        "ledger",
    )
    assert features.read_sides.process_managers == ("transfer_manager",)
    assert features.catalog.read_models == features.read_sides.read_models
    assert set(features.catalog.stream_documents) == {"acc-", "trf-"}
    assert len(features.deciders) == len({c for d in features.domains for c in d.deciders})


@pytest.mark.parametrize(
    ("paths", "problem"),
    [
        ("schema.accounts,no.such.module", "cannot import 'no.such.module'"),
        ("schema.accounts,schema.reads", "'schema.reads' exports no FEATURE"),
        ("schema.accounts, schema.accounts", "'accounts' is listed twice"),
    ],
)
def test_bad_entries_are_refused(paths: str, problem: str) -> None:
    with pytest.raises(FeatureError, match=problem):
        load_features(paths)


def test_the_server_refuses_a_bad_entry_before_serving(tmp_path: Path) -> None:
    env = clean_env(STORE="memory", FEATURES="schema.accounts,no.such.module", PORT="1")
    done = subprocess.run(
        [sys.executable, str(ROOT / "server.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith("ledger: FEATURES: cannot import 'no.such.module'")
