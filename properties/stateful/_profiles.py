"""Hypothesis settings profiles for the stateful engine.

`ci` is what `make check` runs: deterministic (derandomized, no example database) and small
enough to finish in about a minute. `deep` is for a long soak before a release. Both disable
the deadline (a deliver-everything step can legitimately take a few milliseconds on a 5-node
cluster), the "too slow" health check, which is about data generation, not our steps, and the
"explain" phase.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

__all__ = ["CI", "DEEP", "PROFILES", "profile_settings"]

CI = "raftwright-stateful-ci"
DEEP = "raftwright-stateful-deep"

PROFILES: dict[str, str] = {"ci": CI, "deep": DEEP}
"""PROFILES maps the short names the CLI and `run_stateful` accept to registered profiles."""

_SUPPRESSED = (HealthCheck.too_slow, HealthCheck.filter_too_much)
_PHASES = tuple(phase for phase in Phase if phase is not Phase.explain)
"""_PHASES skips "explain": it re-runs the failure under line tracing, slowly, to list lines
that our run table already makes plain."""

settings.register_profile(
    CI,
    max_examples=300,
    stateful_step_count=60,
    derandomize=True,
    print_blob=False,
    deadline=None,
    database=None,
    suppress_health_check=_SUPPRESSED,
    phases=_PHASES,
)
settings.register_profile(
    DEEP,
    max_examples=3000,
    stateful_step_count=200,
    derandomize=False,
    deadline=None,
    database=None,
    suppress_health_check=_SUPPRESSED,
    phases=_PHASES,
)


def profile_settings(profile: str, max_examples: int | None = None) -> settings:
    """profile_settings is the registered profile `profile` ("ci" or "deep"), optionally resized.

    Registering under a project-specific name keeps us from clobbering another suite's "ci"
    profile; loading it is left to the caller so importing this module changes no global state.
    """
    try:
        name = PROFILES[profile]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown profile {profile!r} (known: {known})") from None
    chosen = settings.get_profile(name)
    if max_examples is not None:
        if max_examples < 1:
            raise ValueError("max_examples must be at least 1")
        chosen = settings(chosen, max_examples=max_examples)
    return chosen
