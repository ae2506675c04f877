"""MODELFLEET_PROMETHEUS_SELECTOR: PromQL label matchers, checked at start-up."""

from __future__ import annotations

import pytest

from modelfleet.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ('job="vllm"', 'job="vllm"'),
        (' job = "vllm" , cluster="prod" ', 'job="vllm",cluster="prod"'),
        ('cluster=~"prod-.*",job!="kubernetes-pods"', 'cluster=~"prod-.*",job!="kubernetes-pods"'),
        ('job="a\\"b"', 'job="a\\"b"'),
    ],
)
def test_selector_accepted(raw: str, expected: str) -> None:
    assert Settings.from_env({"MODELFLEET_PROMETHEUS_SELECTOR": raw}).prometheus_selector == expected


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("job=vllm", "not a list of PromQL label matchers"),  # unquoted value
        ('job="a"}', "not a list"),  # closes the selector: would inject PromQL
        ('job="a"} or vector(1) #', "not a list"),
        ('job="a",', "not a list"),
        ('1job="a"', "not a list"),
        ('job="a\nb"', "not a list"),
        ('namespace="team-a"', "namespace is matched by the operator"),
        ('modelfleet_io_deployment="x"', "modelfleet_io_deployment is matched by the operator"),
    ],
)
def test_selector_refused(raw: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env({"MODELFLEET_PROMETHEUS_SELECTOR": raw})
