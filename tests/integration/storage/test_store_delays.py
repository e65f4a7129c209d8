"""Delay-aware counting on every store: the experiment's new fields."""

from __future__ import annotations

from headliner.storage.base import ExperimentSpec, ExperimentStatus, Store

T0 = 1_700_000_000.0
PRIOR = {"median_seconds": 3600.0, "p95_seconds": 86400.0, "weight": 20.0}


# --- experiment fields -------------------------------------------------------------------
def test_burn_in_share_and_delay_prior_round_trip(store: Store) -> None:
    spec = ExperimentSpec(
        name="delays", headlines=["A", "B"], burn_in_share=0.25, delay_prior=PRIOR
    )
    exp = store.create_experiment(spec, T0)
    assert (exp.burn_in_share, dict(exp.delay_prior)) == (0.25, PRIOR)
    assert store.get_experiment(exp.id) == exp
    assert store.list_experiments() == [exp]
    moved = store.set_status(
        exp.id,
        ExperimentStatus.COMPLETED,
        T0 + 1,
        allowed_from=frozenset({ExperimentStatus.RUNNING}),
    )
    assert (moved.burn_in_share, dict(moved.delay_prior)) == (0.25, PRIOR)


def test_experiment_fields_default_to_full_burn_in_and_no_prior(store: Store) -> None:
    exp = store.create_experiment(ExperimentSpec(name="plain", headlines=["A", "B"]), T0)
    stored = store.get_experiment(exp.id)
    assert (stored.burn_in_share, dict(stored.delay_prior)) == (1.0, {})
    assert isinstance(stored.burn_in_share, float)


def test_delay_prior_values_are_stored_as_floats(store: Store) -> None:
    spec = ExperimentSpec(name="ints", headlines=["A"], delay_prior={"median_seconds": 60})
    exp = store.create_experiment(spec, T0)
    stored = store.get_experiment(exp.id).delay_prior
    assert dict(stored) == {"median_seconds": 60.0}
    assert type(stored["median_seconds"]) is float
