"""Settings for timeouts and leader election: defaults for a local run, and refusals naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfleet import settings as settings_module
from modelfleet.settings import Settings, SettingsError


def test_local_defaults_elect_in_default_with_a_per_process_identity(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(settings_module, "SA_NAMESPACE_FILE", tmp_path / "absent")
    s = Settings.from_env({})
    assert s.leader_election is True
    assert (s.lease_name, s.lease_duration_seconds, s.lease_renew_deadline_seconds, s.lease_retry_seconds) == (
        "modelfleet", 8, 5, 2)
    assert s.lease_namespace == "default"
    assert "-" in s.identity and s.identity != Settings.from_env({"POD_NAME": "p"}).identity


def test_in_a_pod_without_downward_api_the_service_account_namespace_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "namespace").write_text("ops\n")
    monkeypatch.setattr(settings_module, "SA_NAMESPACE_FILE", tmp_path / "namespace")
    assert Settings.from_env({}).lease_namespace == "ops"


def test_in_a_pod_the_downward_api_names_namespace_and_identity() -> None:
    s = Settings.from_env({"POD_NAMESPACE": "modelfleet-system", "POD_NAME": "modelfleet-abc"})
    assert (s.lease_namespace, s.identity) == ("modelfleet-system", "modelfleet-abc")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MODELFLEET_LEASE_RENEW_DEADLINE_SECONDS": "9"}, "renew deadline < duration"),
        ({"MODELFLEET_LEASE_RETRY_SECONDS": "5"}, "retry < renew deadline"),
        ({"MODELFLEET_API_READ_TIMEOUT_SECONDS": "0"}, "MODELFLEET_API_READ_TIMEOUT_SECONDS"),
        ({"MODELFLEET_LEADER_ELECTION": "maybe"}, "MODELFLEET_LEADER_ELECTION"),
    ],
)
def test_bad_values_are_refused_naming_them(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_leader_election_can_be_switched_off() -> None:
    assert Settings.from_env({"MODELFLEET_LEADER_ELECTION": "false"}).leader_election is False
