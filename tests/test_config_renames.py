"""A renamed setting: read under its new name for one release, with a warning naming the file and the new name.

The table is ``spamops.config.RENAMED_SETTINGS``; ``train.dask_connect_timeout_s`` (now
``train.dask_connect_timeout_seconds``) is its first entry.  Stored records embedding a
configuration (model cards) are read with the same table, silently and at any release.
"""

from __future__ import annotations

import json
import warnings

import pytest

from spamops.config import (
    RENAMED_SETTINGS,
    Renamed,
    RenamedSettingWarning,
    load_config,
    rename_settings,
    stored_config,
)
from spamops.errors import BadInputError

OLD, NEW = "train.dask_connect_timeout_s", "train.dask_connect_timeout_seconds"


def test_a_config_file_with_an_old_name_trains_with_a_warning_naming_the_file_and_the_new_name(cli, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  dask_connect_timeout_s: 7\n  cv_folds: 3\n")
    store = tmp_path / "store"
    result = cli("train", "--config", config, "--store", store, "--quiet", "-o", "json")
    assert result.code == 0, result.err
    assert (
        f"spamops: warning: {config}: {OLD} is now {NEW}; the old name is read until spamops "
        f"{RENAMED_SETTINGS[OLD].until}, rename it in the file"
    ) in result.err.splitlines()
    version = result.json()["version"]
    card = json.loads((store / "spam" / version / "model-card.json").read_text())
    assert card["config"]["train"]["dask_connect_timeout_seconds"] == 7.0
    assert "dask_connect_timeout_s" not in card["config"]["train"]


def test_the_loader_reads_the_old_name_as_the_new_one_and_warns(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  dask_connect_timeout_s: 7\n")
    with pytest.warns(RenamedSettingWarning, match=f"{config}: {OLD} is now {NEW}"):
        assert load_config(config).train.dask_connect_timeout_seconds == 7.0


def test_both_names_at_once_are_refused_naming_both(cli, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  dask_connect_timeout_s: 7\n  dask_connect_timeout_seconds: 9\n")
    result = cli("models", "list", "--config", config, "--store", tmp_path / "store")
    assert result.code == 2
    assert result.err == f"spamops: error: {config}: both {OLD} and {NEW} are set; {OLD} is the old name, keep {NEW}\n"


def test_after_its_last_release_the_old_name_is_refused_with_the_new_one():
    until = RENAMED_SETTINGS[OLD].until
    later = f"{until.split('.')[0]}.{int(until.split('.')[1]) + 1}.0"
    raw = {"train": {"dask_connect_timeout_s": 7}}
    with pytest.raises(BadInputError, match=f"run.yaml: {OLD} was renamed to {NEW} "):
        rename_settings(raw, "run.yaml", release=later)
    with pytest.warns(RenamedSettingWarning):
        assert rename_settings(raw, "run.yaml", release=f"{until}.4") == {"train": {"dask_connect_timeout_seconds": 7}}


def test_a_setting_may_move_to_another_section_and_unrelated_settings_stay():
    renamed = {"rollout.analysis.prometheus": Renamed("rollout.prometheus_url", until="0.2")}
    raw = {"rollout": {"analysis": {"prometheus": "http://p:9090", "interval": 30}}, "promote": False}
    with pytest.warns(RenamedSettingWarning, match="rollout.analysis.prometheus is now rollout.prometheus_url"):
        moved = rename_settings(raw, "run.yaml", renamed=renamed, release="0.1.0")
    assert moved == {"rollout": {"analysis": {"interval": 30}, "prometheus_url": "http://p:9090"}, "promote": False}
    assert raw["rollout"]["analysis"]["prometheus"] == "http://p:9090"  # the caller's mapping is not changed


def test_a_stored_configuration_is_renamed_silently_and_kept_as_written():
    written = {"train": {"dask_connect_timeout_s": 7, "seed": 3}, "some_later_setting": True}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = stored_config(written)
    assert config.train.dask_connect_timeout_seconds == 7.0 and config.train.seed == 3
    assert config.as_written == written
    assert load_config(None).as_written is None


def test_an_unknown_setting_in_a_config_file_is_still_refused(cli, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  dask_connect_timeout: 7\n")
    result = cli("models", "list", "--config", config, "--store", tmp_path / "store")
    assert result.code == 2 and "train.dask_connect_timeout: Extra inputs are not permitted" in result.err


def test_the_readme_lists_every_renamed_setting():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for old, entry in RENAMED_SETTINGS.items():
        new = f"`{entry.new}`" if entry.new else f"retired: {entry.note}"  # new=None: read, warned about, ignored
        assert f"| `{old}` | {new} | spamops {entry.until} |" in readme, old
