"""The judge's thresholds and the Standard backend's gateway come from the run configuration, defaults included."""

from __future__ import annotations

import inspect

from spamops.config import AnalysisConfig, RolloutConfig
from spamops.deploy import traffic
from spamops.deploy.analysis import Thresholds


def test_thresholds_are_the_analysis_settings_of_the_same_names():
    changed = AnalysisConfig(
        min_requests=7, min_success_rate=0.5, max_p99_seconds=2.0, max_spam_rate_diff=0.3, max_probability_shift=0.4
    )
    assert Thresholds.from_config(changed) == Thresholds(7, 0.5, 2.0, 0.3, 0.4)
    assert Thresholds() == Thresholds.from_config(AnalysisConfig())  # one set of defaults


def test_the_standard_backend_defaults_to_the_rollout_gateway_settings():
    defaults = RolloutConfig()
    for build in (traffic.Standard, traffic.backend_for):
        params = inspect.signature(build).parameters
        assert params["route"].default == defaults.standard_route
        assert (params["gateway"].default, params["gateway_namespace"].default) == (
            defaults.gateway_name,
            defaults.gateway_namespace,
        )
