"""The canary analysis settings as a user's config file gives them: refusals before anything is routed,
renamed settings read with a warning, and success-rate providers that read real data planes' metrics.

``spamops rollout status`` loads the config first, so a refused file is exit 2 before any cluster
call (the kubeconfig named does not even exist).
"""

from __future__ import annotations

import pytest
import yaml

from spamops.config import (
    SUCCESS_RATE_PRESETS,
    AnalysisConfig,
    RenamedSettingWarning,
    SuccessRateSource,
    load_config,
    stored_config,
)


def _config(tmp_path, analysis: dict):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"rollout": {"analysis": analysis}}))
    return path


def _status(cli, tmp_path, analysis: dict):
    return cli("rollout", "status", "--config", _config(tmp_path, analysis), "--kubeconfig", tmp_path / "none")


def test_a_one_step_rollout_is_refused_at_config_load(cli, tmp_path):
    """Was: step_weights [100] could never promote (no stable side at 100 %), found only at the end of a rollout."""
    result = _status(cli, tmp_path, {"step_weights": [100]})

    assert result.code == 2
    assert (
        "rollout.analysis.step_weights: a one-step rollout ([100]) never measures the canary next to stable"
        in result.err
    )


def test_a_custom_template_with_unbalanced_braces_is_exit_2_before_anything_is_routed(cli, tmp_path):
    bad = {
        "provider": "custom",
        "requests": 'mesh_requests_total{version="{version}"',
        "errors": 'mesh_errors_total{version="{version}"}',
    }

    result = _status(cli, tmp_path, {"success_rate": bad})

    assert result.code == 2
    assert "rollout.analysis.success_rate" in result.err and "unbalanced braces" in result.err
    assert result.err.count("\n") == 1  # one line


def test_a_custom_template_with_an_unknown_placeholder_names_the_known_ones(cli, tmp_path):
    bad = {"provider": "custom", "requests": 'r{v="{model}"}', "errors": 'e{v="{model}"}', "join_label": "instance"}

    result = _status(cli, tmp_path, {"success_rate": bad})

    assert result.code == 2 and "unknown placeholder {model} (known: {version})" in result.err


def test_the_istio_selector_the_old_docs_suggested_is_accepted_with_single_braces():
    """Was: ``istio_requests_total{response_code!~"5.."}`` loaded, then raised ValueError at the first check."""
    source = SuccessRateSource(
        provider="custom",
        requests='istio_requests_total{reporter="destination"}',
        errors='istio_requests_total{reporter="destination",response_code=~"5.."}',
        join_label="instance",
    )

    assert source.selectors()[1] == 'istio_requests_total{reporter="destination",response_code=~"5.."}'


def test_renamed_settings_are_read_with_a_deprecation_warning(tmp_path):
    path = _config(
        tmp_path, {"interval": 30, "inconclusive_limit": 2, "max_p99_seconds": 0.2, "max_spam_rate_diff": 0.1}
    )

    with pytest.warns(RenamedSettingWarning) as warned:
        analysis = load_config(path).rollout.analysis

    assert (analysis.undecided_deadline, analysis.max_latency_seconds, analysis.spam_rate_tolerance) == (90.0, 0.2, 0.1)
    messages = [str(w.message) for w in warned]
    assert messages[0].startswith(
        f"{path}: rollout.analysis.inconclusive_limit is now rollout.analysis.undecided_deadline "
        "(N inconclusive checks in a row became (N+1) intervals undecided: 90.0)"
    )
    assert len(messages) == 3 and all(m.endswith("rename it in the file") for m in messages)


def test_the_cli_prints_each_renamed_setting_as_one_warning_line(cli, tmp_path):
    result = _status(cli, tmp_path, {"max_p99_seconds": 0.2})

    assert "spamops: warning: " in result.err and "rollout.analysis.max_p99_seconds is now" in result.err


def test_retired_settings_are_read_with_a_warning_and_ignored(tmp_path):
    path = _config(tmp_path, {"max_probability_shift": 0.1, "success_rate_query": 'x{{a="{version}"}}'})

    with pytest.warns(RenamedSettingWarning) as warned:
        analysis = load_config(path).rollout.analysis

    assert analysis == AnalysisConfig()
    messages = " ".join(str(w.message) for w in warned)
    assert "rollout.analysis.max_probability_shift is retired and ignored" in messages
    assert (
        "rollout.analysis.success_rate_query is retired and ignored" in messages
        and "remove it from the file" in messages
    )


def test_a_stored_config_with_old_names_loads_silently(recwarn):
    """Model cards embed the run configuration an earlier build used: they load, without warnings, as written."""
    written = {"rollout": {"analysis": {"inconclusive_limit": 3, "max_p99_seconds": 0.5, "max_probability_shift": 0.1}}}

    config = stored_config(written)

    assert config.rollout.analysis.undecided_deadline == 240.0 and config.rollout.analysis.max_latency_seconds == 0.5
    assert config.as_written == written and not [w for w in recwarn if w.category is RenamedSettingWarning]


def test_no_success_rate_preset_reads_a_metric_only_a_test_helper_exports():
    """Was: the default read spamops_gateway_requests_total, which only the tests' traffic driver exports."""
    assert AnalysisConfig().success_rate.provider == "predictor"
    for requests, errors, _ in SUCCESS_RATE_PRESETS.values():
        assert "spamops_gateway" not in requests + errors
