"""The judge's thresholds and the Standard backend's gateway come from the run configuration, defaults included."""

from __future__ import annotations

import dataclasses
import inspect

from spamops.config import AnalysisConfig, RolloutConfig
from spamops.deploy import traffic
from spamops.deploy.judge import Settings


def test_the_judges_settings_are_the_analysis_settings_of_the_same_names():
    changed = AnalysisConfig(
        min_requests=7, min_success_rate=0.5, max_latency_seconds=2.0, spam_rate_tolerance=0.3, alpha=0.05
    )
    settings = Settings.from_config(changed)
    assert (settings.min_requests, settings.min_success_rate, settings.max_latency_seconds) == (7, 0.5, 2.0)
    assert (settings.spam_rate_tolerance, settings.alpha, settings.steps) == (0.3, 0.05, 4)
    # no defaults of its own: every field comes from the one set in config
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(Settings))


def test_the_standard_backend_defaults_to_the_rollout_gateway_settings():
    defaults = RolloutConfig()
    for build in (traffic.Standard, traffic.backend_for):
        params = inspect.signature(build).parameters
        assert params["route"].default == defaults.standard_route
        assert (params["gateway"].default, params["gateway_namespace"].default) == (
            defaults.gateway_name,
            defaults.gateway_namespace,
        )
