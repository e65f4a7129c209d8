"""Request (``*Create``) and response (``*Public``) models of the HTTP API.

Field constraints here give malformed requests a 422 that names the field.
The numeric bounds and named choices are not written here: they are read
from the declarations next to what they constrain (``parameter_constraints``
and the ``*_CONSTRAINTS`` mappings of :mod:`headliner.core`, and
:data:`~headliner.service.experiments.REQUEST_CONSTRAINTS`), which the domain
layer checks again for callers that skip HTTP (the CLI).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from headliner.core.allocation import GUARD_CONSTRAINTS, check_floor
from headliner.core.delay import ATTRIBUTION_WINDOW, DelayPrior
from headliner.core.kpi import DEFAULT_KPI, EVENT_TYPES, KPIS, EventType, Kpi
from headliner.core.policies import LIVE_POLICIES, TopTwoThompson
from headliner.core.posterior import PRIOR_CONSTRAINTS
from headliner.core.stopping import Require, StoppingRule
from headliner.core.validation import Options
from headliner.service.experiments import (
    REQUEST_CONSTRAINTS,
    DecisionPage,
    DecisionResult,
    EventResult,
    WaveResult,
    build_spec,
)
from headliner.service.reporting import DelaySummary, Report, StoppingStatus
from headliner.service.state import ExperimentState, delay_prior_of, stopping_from_mapping
from headliner.sim.plan import PlanSpec
from headliner.sim.scenarios import within
from headliner.storage.base import (
    ApiKeyRecord,
    ArmRecord,
    DecisionRecord,
    ExperimentRecord,
    ExperimentSpec,
    KeyScope,
    OpenResult,
    Snapshot,
)


def iso_time(seconds: float) -> str:
    """A stored time (seconds since the epoch) as ISO 8601 in UTC, to the microsecond.

    >>> iso_time(1795774985.25)
    '2026-11-27T10:23:05.250000Z'
    """
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _seconds(value: Any) -> Any:
    """Read an ISO 8601 time with a zone back into seconds since the epoch."""
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(f"time {value!r} has no zone (append Z for UTC)")
        return parsed.timestamp()
    if isinstance(value, datetime):
        return value.timestamp()
    return value


#: A time in a response: held as seconds since the epoch, written as ISO 8601 in UTC.
Timestamp = Annotated[
    float,
    BeforeValidator(_seconds),
    PlainSerializer(iso_time, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def one_of(options: Options) -> Any:
    """A declared choice as field metadata (the enum of the OpenAPI document)."""
    return Field(json_schema_extra={"enum": list(options.values)})


Headline = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Reward = Annotated[
    int,
    Field(
        strict=True,
        description="1 a success of the experiment's KPI (opened, clicked, converted), 0 none",
    ),
    within(REQUEST_CONSTRAINTS["reward"]),
]
_RULE = StoppingRule.parameter_constraints
_DEFAULT_RULE = StoppingRule()
_DELAY = DelayPrior.parameter_constraints


# NUL, the other C0 controls but tab, newline and carriage return, DEL, and lone
# UTF-16 surrogates (which JSON's \uXXXX escapes can spell but UTF-8 cannot encode):
# PostgreSQL refuses NUL in text, and a surrogate cannot be rendered back as JSON.
_UNSAFE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def unsafe_text(text: str) -> bool:
    """Whether ``text`` holds a control character or a lone surrogate (refused as input)."""
    return _UNSAFE_TEXT.search(text) is not None


def _safe_text(value: object) -> None:
    if isinstance(value, str):
        if _UNSAFE_TEXT.search(value) is not None:
            raise PydanticCustomError(
                "string_unsafe",
                "String must not contain control characters (such as NUL) or lone surrogates",
            )
    elif isinstance(value, list):
        for item in value:
            _safe_text(item)


class _Input(BaseModel):
    """Base of every request body.

    Strict types (``false`` is not an arm index, ``"1"`` not a number), finite
    numbers only (JSON has no NaN or Infinity, though lenient parsers accept
    them), and text without control characters or lone surrogates, whatever
    the field.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _text_is_safe(cls, value: object) -> object:
        _safe_text(value)
        return value


# --- experiments --------------------------------------------------------------
class StoppingSettings(_Input):
    """When to declare a winner automatically (see ``headliner.core.stopping.StoppingRule``)."""

    enabled: bool = True
    p_best_threshold: Annotated[float | None, within(_RULE["p_best_threshold"])] = (
        _DEFAULT_RULE.p_best_threshold
    )
    value_remaining_threshold: Annotated[
        float | None, within(_RULE["value_remaining_threshold"])
    ] = _DEFAULT_RULE.value_remaining_threshold
    value_remaining_quantile: Annotated[float, within(_RULE["value_remaining_quantile"])] = (
        _DEFAULT_RULE.value_remaining_quantile
    )
    require: Require = _DEFAULT_RULE.require
    min_opens: Annotated[int, within(_RULE["min_opens"])] = _DEFAULT_RULE.min_opens
    check_interval_seconds: Annotated[float, within(_RULE["check_interval_seconds"])] = Field(
        default=_DEFAULT_RULE.check_interval_seconds, description="0: at every posterior refresh"
    )
    rate_spread: Annotated[float | None, within(_RULE["rate_spread"])] = Field(
        default=_DEFAULT_RULE.rate_spread,
        description="how much headlines' open rates usually differ (relative standard "
        "deviation); the rule judges them under a prior pooled to that spread; null: the "
        "experiment's own prior",
    )

    @model_validator(mode="after")
    def _one_criterion(self) -> Self:
        if self.p_best_threshold is None and self.value_remaining_threshold is None:
            raise ValueError("set p_best_threshold or value_remaining_threshold (or both)")
        return self

    def rule(self) -> StoppingRule | None:
        """The core rule, or None when automatic declaration is off."""
        if not self.enabled:
            return None
        return StoppingRule(**self.model_dump(exclude={"enabled"}))

    @classmethod
    def from_rule(cls, rule: StoppingRule | None) -> StoppingSettings:
        """Public form of a stored rule."""
        if rule is None:
            return cls(enabled=False)
        return cls(**asdict(rule))


class DelayPriorSettings(_Input):
    """The open-delay curve assumed until the experiment's own opens say otherwise."""

    median_seconds: Annotated[float, within(_DELAY["median_seconds"])] = Field(
        default=DelayPrior.median_seconds, description="half the opens arrive by then"
    )
    p95_seconds: Annotated[float, within(_DELAY["p95_seconds"])] = Field(
        default=DelayPrior.p95_seconds, description="95% of the opens arrive by then"
    )
    weight: Annotated[float, within(_DELAY["weight"])] = Field(
        default=DelayPrior.weight, description="how many opens the curve counts as"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.p95_seconds <= self.median_seconds:
            raise ValueError("p95_seconds must be greater than median_seconds")
        return self

    def prior(self) -> DelayPrior:
        """The core prior."""
        return DelayPrior(**self.model_dump())


class ExperimentCreate(_Input):
    """A new experiment."""

    name: str = Field(min_length=1, max_length=200, examples=["Spring sale"])
    headlines: list[Headline] = Field(min_length=2, max_length=100)
    # "top-two" is still read as "top_two", but only the canonical names are documented.
    policy: Annotated[str, one_of(LIVE_POLICIES)] = "thompson"
    leader_probability: Annotated[
        float | None, within(TopTwoThompson.parameter_constraints["leader_probability"])
    ] = Field(default=None, description="top_two only: the leader's share of sends")
    alpha_prior: Annotated[float, within(PRIOR_CONSTRAINTS["alpha_prior"])] = 1.0
    beta_prior: Annotated[float, within(PRIOR_CONSTRAINTS["beta_prior"])] = 1.0
    attribution_window_seconds: Annotated[float, within(ATTRIBUTION_WINDOW)] = Field(
        default=72 * 3600.0,
        description="A send without an open becomes a non-open once this has passed.",
    )
    burn_in_per_arm: Annotated[int, within(GUARD_CONSTRAINTS["burn_in_per_arm"])] = Field(
        default=100,
        description="effective (delay-adjusted) sends each headline needs before the policy "
        "takes over; until then sends are split evenly",
    )
    burn_in_share: Annotated[float, within(GUARD_CONSTRAINTS["burn_in_share"])] = Field(
        default=1.0,
        description="cap on the total share of headlines still in burn-in while others are "
        "established (e.g. one added mid-run); each gets at most an even share",
    )
    floor: Annotated[float, within(GUARD_CONSTRAINTS["floor"])] = Field(
        default=0.0, description="minimum share per headline"
    )
    winner_exploration: Annotated[float, within(GUARD_CONSTRAINTS["winner_exploration"])] = 0.0
    stopping: StoppingSettings = Field(default_factory=StoppingSettings)
    delay_prior: DelayPriorSettings = Field(default_factory=DelayPriorSettings)
    plan: PlanSpec | None = Field(
        default=None,
        description="the plan this experiment runs (POST /v1/plans' request), stored with it "
        "so that plan and actual can be compared",
    )
    kpi: Kpi = Field(
        default=DEFAULT_KPI,
        description="what a success is: a send opened, clicked or converted (any yes/no "
        "event you define). The `open` routes record a success of this KPI; of the reported "
        "events only this KPI's type counts, and never one made by a machine",
    )

    def to_spec(self) -> ExperimentSpec:
        """The validated :class:`ExperimentSpec` (the domain checks the rules again)."""
        return build_spec(
            self.name,
            self.headlines,
            policy=self.policy,
            leader_probability=self.leader_probability,
            alpha_prior=self.alpha_prior,
            beta_prior=self.beta_prior,
            attribution_window_seconds=self.attribution_window_seconds,
            burn_in_per_arm=self.burn_in_per_arm,
            burn_in_share=self.burn_in_share,
            floor=self.floor,
            winner_exploration=self.winner_exploration,
            stopping=self.stopping.rule(),
            auto_stop=self.stopping.enabled,
            delay_prior=self.delay_prior.prior(),
            plan=None if self.plan is None else self.plan.model_dump(mode="json"),
            kpi=self.kpi,
        )

    @field_validator("headlines")
    @classmethod
    def _distinct(cls, headlines: list[str]) -> list[str]:
        if len(set(headlines)) != len(headlines):
            raise ValueError("headlines must be distinct")
        return headlines

    @field_validator("policy")
    @classmethod
    def _live_policy(cls, policy: str) -> str:
        return LIVE_POLICIES.check(policy.replace("-", "_"), "policy", "Experiment")

    @field_validator("floor")
    @classmethod
    def _floor_fits(cls, floor: float, info: ValidationInfo) -> float:
        headlines = info.data.get("headlines")
        return check_floor(floor, len(headlines), "Experiment") if headlines else floor


class ArmPublic(BaseModel):
    """A headline of an experiment."""

    arm: int
    headline: str
    active: bool
    created_at: Timestamp
    retired_at: Timestamp | None

    @classmethod
    def of(cls, arm: ArmRecord) -> ArmPublic:
        """From the stored record."""
        return cls(
            arm=arm.arm,
            headline=arm.headline,
            active=arm.active,
            created_at=arm.created_at,
            retired_at=arm.retired_at,
        )


class ExperimentSummary(BaseModel):
    """An experiment in a list (stored status; ``GET`` one for the derived burn-in status)."""

    id: str
    name: str
    status: str
    policy: str
    winner_arm: int | None
    created_at: Timestamp
    completed_at: Timestamp | None
    winner_declared_at: Timestamp | None = Field(
        default=None, description="when the winner was named (by the stopping rule or by hand)"
    )

    @classmethod
    def of(cls, record: ExperimentRecord) -> ExperimentSummary:
        """From the stored record."""
        return cls(
            id=record.id,
            name=record.name,
            status=record.status.value,
            policy=record.policy,
            winner_arm=record.winner_arm,
            created_at=record.created_at,
            completed_at=record.completed_at,
            winner_declared_at=record.winner_declared_at,
        )


class ExperimentPublic(ExperimentSummary):
    """An experiment with its settings and headlines; ``status`` may be ``burn_in``."""

    policy_settings: dict[str, float]
    alpha_prior: float
    beta_prior: float
    attribution_window_seconds: float
    burn_in_per_arm: int
    burn_in_share: float
    floor: float
    winner_exploration: float
    winner_headline: str | None
    stopping: StoppingSettings
    delay_prior: DelayPriorSettings
    headlines: list[ArmPublic]
    plan: dict[str, Any] | None = Field(
        default=None, description="the inputs of the plan it was created from; null: none"
    )
    kpi: Annotated[str, one_of(KPIS)] = Field(
        default=DEFAULT_KPI, description="what a success is (the report's opens count them)"
    )

    @classmethod
    def of_state(cls, state: ExperimentState) -> ExperimentPublic:
        """From a cached state (derived status)."""
        return cls.of_record(state.record, state.arms, status=state.status)

    @classmethod
    def of_record(
        cls, record: ExperimentRecord, arms: list[ArmRecord], *, status: str | None = None
    ) -> ExperimentPublic:
        """From a stored record and its arms."""
        winner = record.winner_arm
        return cls(
            **ExperimentSummary.of(record).model_dump(exclude={"status"}),
            status=status or record.status.value,
            policy_settings=dict(record.policy_settings),
            alpha_prior=record.alpha_prior,
            beta_prior=record.beta_prior,
            attribution_window_seconds=record.attribution_window_seconds,
            burn_in_per_arm=record.burn_in_per_arm,
            burn_in_share=record.burn_in_share,
            floor=record.floor,
            winner_exploration=record.winner_exploration,
            winner_headline=None if winner is None else arms[winner].headline,
            stopping=StoppingSettings.from_rule(stopping_from_mapping(record.stopping)),
            delay_prior=DelayPriorSettings(**asdict(delay_prior_of(record))),
            headlines=[ArmPublic.of(a) for a in arms],
            plan=None if record.plan is None else dict(record.plan),
            kpi=record.kpi,
        )


class ExperimentComplete(_Input):
    """End an experiment by hand, naming the winner by position or by text."""

    winner_arm: int | None = Field(default=None, ge=0)
    winner_headline: Headline | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.winner_arm is None) == (self.winner_headline is None):
            raise ValueError("give exactly one of winner_arm and winner_headline")
        return self

    @property
    def winner(self) -> int | str:
        """The named winner."""
        return self.winner_arm if self.winner_arm is not None else str(self.winner_headline)


class ArmCreate(_Input):
    """A headline to add to a running experiment."""

    headline: Headline


# --- decisions and outcomes -----------------------------------------------------
class DecisionCreate(_Input):
    """Optional details of a per-send decision request."""

    recipient_id: str | None = Field(default=None, min_length=1, max_length=256)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="A retried request with the same key returns the same decision "
        "(the Idempotency-Key header does the same).",
    )


class DecisionPublic(BaseModel):
    """The headline to send, and the probability the policy had of choosing it."""

    decision_id: str
    experiment_id: str
    arm: int
    headline: str
    propensity: float
    recipient_id: str | None
    created_at: Timestamp
    replayed: bool = Field(description="True when an idempotency key returned a stored decision")
    open_pixel: str | None = Field(
        default=None,
        description="path of this send's tracking pixel (GET, no API key: put it in the "
        "email); null when the service has no HEADLINER_PIXEL_SECRET",
    )

    @staticmethod
    def payload(result: DecisionResult, open_pixel: str | None = None) -> dict[str, object]:
        """The response body as a plain dict (the hot path skips model validation)."""
        d = result.decision
        return {
            "decision_id": d.id,
            "experiment_id": d.experiment_id,
            "arm": d.arm,
            "headline": result.headline,
            "propensity": d.propensity,
            "recipient_id": d.recipient_id,
            "created_at": iso_time(d.created_at),
            "replayed": result.replayed,
            "open_pixel": open_pixel,
        }


class DecisionLogPublic(BaseModel):
    """A logged decision as the decision log lists it, with what became of its send."""

    decision_id: str
    arm: int
    headline: str
    propensity: float
    recipient_id: str | None
    idempotency_key: str | None = Field(description="the caller's send key, if it gave one")
    created_at: Timestamp
    opened_at: Timestamp | None = Field(description="first open reported (even late); null if none")
    outcome: int | None = Field(
        description="1 opened (inside the window, or an explicit 1), 0 an explicit non-open, "
        "null not known (yet)"
    )
    late: bool = Field(description="the open was reported after the attribution window")

    @staticmethod
    def payload(decision: DecisionRecord, headline: str) -> dict[str, Any]:
        """One row as a plain dict (JSON-ready)."""
        return {
            "decision_id": decision.id,
            "arm": decision.arm,
            "headline": headline,
            "propensity": decision.propensity,
            "recipient_id": decision.recipient_id,
            "idempotency_key": decision.idempotency_key,
            "created_at": iso_time(decision.created_at),
            "opened_at": None if decision.opened_at is None else iso_time(decision.opened_at),
            "outcome": decision.outcome,
            "late": decision.late,
        }


class DecisionListPublic(BaseModel):
    """A page of the decision log, oldest first."""

    decisions: list[DecisionLogPublic]
    next_after: str | None = Field(
        description="pass as `after` for the next page; null on the last page"
    )

    @staticmethod
    def payload(page: DecisionPage) -> dict[str, Any]:
        """The page as a plain dict (JSON-ready)."""
        return {
            "decisions": [
                DecisionLogPublic.payload(d, page.headlines[d.arm]) for d in page.decisions
            ],
            "next_after": page.next_after,
        }


class OpenPublic(BaseModel):
    """What happened to a reported success of the KPI: counted, duplicate or late.

    Called an open whatever the experiment's KPI is (a click, a conversion).
    """

    decision_id: str
    result: OpenResult
    counted: bool


#: The longest user agent stored; a longer one is refused (pixel requests: cut to it).
MAX_USER_AGENT = 1000


def ip_address_text(value: str) -> str:
    """``value`` as an IPv4 or IPv6 address in its canonical form; ValueError if it is none."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


class EventCreate(_Input):
    """An event of a send as the email service provider reports it (e.g. from a webhook)."""

    type: EventType = Field(
        description="open, click or conversion (any yes/no event you define); it counts "
        "toward the experiment's KPI only when it is the KPI's type"
    )
    machine: bool = Field(
        default=False,
        description="a machine made it (a privacy proxy fetching the pixel, such as Apple "
        "Mail Privacy Protection, or a link scanner): stored, never counted",
    )
    user_agent: str | None = Field(
        default=None, max_length=MAX_USER_AGENT, description="as the provider saw it"
    )
    proxy_address: str | None = Field(
        default=None,
        max_length=64,
        description="the IPv4 or IPv6 address the event came from (a proxy's, for machine opens)",
    )

    @field_validator("proxy_address")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        return None if value is None else ip_address_text(value)


class EventPublic(BaseModel):
    """A stored event, and whether it counted toward the experiment's KPI.

    ``result`` is what recording the KPI's success did (``counted``,
    ``duplicate``: the send's success was already recorded, ``late``: after
    the attribution window), null when the event is not a success of the KPI
    (another type, or made by a machine); ``reason`` says why it did not count.
    """

    event_id: str
    decision_id: str
    arm: int
    type: Annotated[str, one_of(EVENT_TYPES)]
    machine: bool
    at: Timestamp
    counted: bool = Field(description="it counted toward the KPI (the first time, in the window)")
    result: OpenResult | None
    reason: str | None = Field(description="why it did not count; null when it did")

    @staticmethod
    def payload(result: EventResult) -> dict[str, Any]:
        """The response body as a plain dict (JSON-ready)."""
        event = result.event
        return {
            "event_id": event.id,
            "decision_id": event.decision_id,
            "arm": event.arm,
            "type": event.type,
            "machine": event.machine,
            "at": iso_time(event.at),
            "counted": result.counted,
            "result": None if result.result is None else result.result.value,
            "reason": result.reason,
        }


class OutcomeCreate(_Input):
    """An explicit outcome of a send, for a KPI known at once (a click, a purchase)."""

    reward: Reward


class OutcomePublic(BaseModel):
    """``recorded`` is False when the same outcome was already stored."""

    decision_id: str
    reward: int
    recorded: bool


# --- waves --------------------------------------------------------------------
class AllocationCreate(_Input):
    """A wave to split over the headlines."""

    sends: Annotated[int, within(REQUEST_CONSTRAINTS["sends"])] = Field(
        strict=True, examples=[50_000]
    )


class WaveArmPublic(BaseModel):
    """One headline's part of a wave."""

    arm: int
    headline: str
    sends: int
    opens: int
    late_opens: int


class WavePublic(BaseModel):
    """A wave: its id and sends (and opens so far) per headline."""

    wave_id: str
    experiment_id: str
    created_at: Timestamp
    sends: int
    allocation: list[WaveArmPublic]
    reason: str | None = Field(
        default=None, description="why the wave was split so (only when it was just split)"
    )

    @classmethod
    def of(cls, result: WaveResult) -> WavePublic:
        """From the domain result."""
        wave = result.wave
        return cls(
            wave_id=wave.id,
            experiment_id=wave.experiment_id,
            created_at=wave.created_at,
            sends=sum(wave.arm_to_sends.values()),
            allocation=[
                WaveArmPublic(
                    arm=arm,
                    headline=result.headlines[arm],
                    sends=sends,
                    opens=wave.arm_to_opens.get(arm, 0),
                    late_opens=wave.arm_to_late_opens.get(arm, 0),
                )
                for arm, sends in sorted(wave.arm_to_sends.items())
            ],
            reason=result.reason,
        )


class WaveOpenTotal(_Input):
    """Running total of opens of one headline in a wave (by position or text)."""

    arm: int | None = Field(default=None, ge=0)
    headline: Headline | None = None
    opens: Annotated[int, within(REQUEST_CONSTRAINTS["opens"])] = Field(strict=True)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.arm is None) == (self.headline is None):
            raise ValueError("give exactly one of arm and headline")
        return self


class WaveOpensCreate(_Input):
    """Running totals of opens per headline; totals never go down (resending is harmless)."""

    opens: list[WaveOpenTotal] = Field(min_length=1, max_length=1000)

    def totals(self) -> dict[int | str, int]:
        """Headline (position or text) to running total."""
        out: dict[int | str, int] = {}
        for item in self.opens:
            key: int | str = item.arm if item.arm is not None else str(item.headline)
            out[key] = item.opens
        return out


# --- report -------------------------------------------------------------------
class ArmReportPublic(BaseModel):
    """One headline's line of the report.

    ``posterior_mean`` and ``credible_interval`` are the delay-aware estimate
    of the open rate: opens against ``effective_sends``, the sends still in
    their window weighted by the share of their opens that has arrived (the
    interval includes what is not known yet about the opens still to come).
    ``matured_sends`` are the sends whose window has passed (or whose outcome
    was given) and ``matured_opens`` the opens among them; ``observed_rate``
    is their ratio. Every "open" here is a success of the experiment's KPI
    (a click in a click experiment); ``open_events`` and ``machine_opens``
    are the stored open events, counted or not.
    """

    arm: int
    headline: str
    active: bool
    sends: int
    opens: int
    non_opens: int
    effective_sends: float
    matured_sends: int
    matured_opens: int
    pending: int
    late_opens: int
    observed_rate: float | None
    posterior_mean: float | None
    credible_interval: tuple[float | None, float | None]
    posterior_parameters: tuple[float | None, float | None] = Field(
        description="alpha and beta of the Beta the estimate and its interval come from"
    )
    p_best: float | None
    expected_loss: float | None
    allocation: float | None
    open_events: int = Field(
        description="open events stored for its sends (pixel fetches and reported opens), "
        "counted or not"
    )
    machine_opens: int = Field(description="of those, the ones a machine made: never counted")


class DelaySummaryPublic(BaseModel):
    """The open-delay curve estimated from the experiment's own opens."""

    median_seconds: float = Field(description="half of a send's eventual opens arrive by then")
    p90_seconds: float = Field(description="nine tenths of them arrive by then")
    opens_seen: float = Field(description="opens with timing data behind the curve")
    horizon_seconds: float = Field(
        description="oldest age opens were looked at; beyond it the prior curve is used"
    )
    prior: DelayPriorSettings

    @classmethod
    def of(cls, summary: DelaySummary) -> DelaySummaryPublic:
        """From the domain block."""
        return cls(
            median_seconds=summary.median_seconds,
            p90_seconds=summary.p90_seconds,
            opens_seen=summary.opens_seen,
            horizon_seconds=summary.horizon_seconds,
            prior=DelayPriorSettings(**asdict(summary.prior)),
        )


class SnapshotPublic(BaseModel):
    """P(best), allocation share and estimate per active headline position at one moment.

    ``posterior_mean`` and ``credible_interval`` are the report's delay-aware
    estimate as it stood then; they, ``sends`` and ``burn_in`` are null in
    snapshots stored by versions that did not record them.
    """

    at: Timestamp
    p_best: dict[int, float | None]
    allocation: dict[int, float | None]
    posterior_mean: dict[int, float | None] | None = None
    credible_interval: dict[int, tuple[float | None, float | None]] | None = None
    sends: dict[int, int] | None = Field(default=None, description="sends so far")
    burn_in: bool | None = Field(default=None, description="burn-in was on")

    @classmethod
    def of(cls, snapshot: Snapshot) -> SnapshotPublic:
        """From the stored snapshot."""
        estimate = snapshot.arm_to_estimate
        return cls(
            at=snapshot.at,
            p_best=dict(snapshot.arm_to_p_best),
            allocation=dict(snapshot.arm_to_allocation),
            posterior_mean=None if estimate is None else {a: e[0] for a, e in estimate.items()},
            credible_interval=None
            if estimate is None
            else {a: (e[1], e[2]) for a, e in estimate.items()},
            sends=None if snapshot.arm_to_sends is None else dict(snapshot.arm_to_sends),
            burn_in=snapshot.burn_in,
        )


class StoppingStatusPublic(BaseModel):
    """The stopping rule's view on the delay-aware posterior, and any declaration."""

    champion_arm: int = Field(description="the active headline with the highest P(best)")
    p_best: float | None = Field(description="the champion's P(best), as the stopping rule sees it")
    p_within: float | None = Field(
        description="probability that no headline beats the champion by more than the "
        "value-remaining threshold"
    )
    value_remaining: float | None = Field(description="95th percentile of the relative lift left")
    min_opens: int | None = Field(description="opens needed first; null: automatic stopping off")
    opens: int = Field(description="counted opens of the active headlines")
    in_burn_in: bool = Field(description="the rule waits for burn-in to end")
    winner_declared: bool = Field(description="a winner was named, by the rule or by hand")
    reason: str | None = Field(description="why, as recorded when the winner was named")

    @classmethod
    def of(cls, status: StoppingStatus) -> StoppingStatusPublic:
        """From the domain block."""
        return cls(
            champion_arm=status.champion,
            p_best=status.p_best,
            p_within=status.p_within,
            value_remaining=status.value_remaining,
            min_opens=status.min_opens,
            opens=status.opens,
            in_burn_in=status.in_burn_in,
            winner_declared=status.winner_declared,
            reason=status.reason,
        )


class ReportPublic(BaseModel):
    """The experiment report.

    ``champion_arm`` and ``value_remaining`` repeat ``stopping_status``'s;
    an estimate that cannot be computed (a snapshot stored by an older version
    with a non-finite P(best), say) is null, as JSON has no NaN;
    ``allocation_reason`` says why the next sends are split as ``allocation``
    says; ``delay`` describes the open-delay curve behind the estimates.
    ``kpi`` is what the counted opens are successes of.
    """

    experiment_id: str
    name: str
    status: str
    kpi: Annotated[str, one_of(KPIS)]
    generated_at: Timestamp
    winner_arm: int | None
    winner_headline: str | None
    winner_declared_at: Timestamp | None = Field(description="when the winner was named")
    champion_arm: int
    value_remaining: float | None
    allocation_reason: str
    delay: DelaySummaryPublic
    stopping: StoppingSettings
    stopping_status: StoppingStatusPublic
    arms: list[ArmReportPublic]
    snapshots: list[SnapshotPublic]
    machine_open_share: float | None = Field(
        description="machine opens among the open events of every headline; null: no open events"
    )

    @classmethod
    def of(cls, report: Report) -> ReportPublic:
        """From the domain report."""
        record = report.experiment
        winner = record.winner_arm
        return cls(
            experiment_id=record.id,
            name=record.name,
            status=report.status,
            kpi=record.kpi,
            generated_at=report.generated_at,
            winner_arm=winner,
            winner_headline=None if winner is None else report.arms[winner].headline,
            winner_declared_at=record.winner_declared_at,
            champion_arm=report.champion,
            value_remaining=report.value_remaining,
            allocation_reason=report.allocation_reason,
            delay=DelaySummaryPublic.of(report.delay),
            stopping=StoppingSettings.from_rule(report.stopping),
            stopping_status=StoppingStatusPublic.of(report.stopping_status),
            arms=[ArmReportPublic(**vars(a)) for a in report.arms],
            snapshots=[SnapshotPublic.of(s) for s in report.snapshots],
            machine_open_share=report.machine_open_share,
        )


# --- ops ----------------------------------------------------------------------
class HealthPublic(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"


# --- plans ------------------------------------------------------------------------
class PlanRequest(PlanSpec):
    """``POST /v1/plans``: a plan's inputs, as ``headliner plan`` reads them from a file.

    The campaign keys of a scenario (durations as seconds or ``"2h"``), with
    the replications bounded so that a request cannot hog a worker.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    replications: Annotated[int, within(REQUEST_CONSTRAINTS["plan_replications"])] = 1000
    recommend: bool = Field(
        default=True,
        description="also search the list size, cadence and burn-in that keep P(within 1%) at "
        "95% (about as long again as the plan itself)",
    )

    @field_validator("*", mode="after")
    @classmethod
    def _text_is_safe(cls, value: object) -> object:
        _safe_text(value)
        return value

    def spec(self) -> PlanSpec:
        """The plan itself, as stored with an experiment created from it."""
        return PlanSpec.model_validate(self.model_dump(exclude={"recommend"}))


class PlanPublic(BaseModel):
    """A plan's figures, each with its 95% interval (``*_ci95``), and its verdict.

    Shares are fractions; hours and sends to a decision are null where too
    few simulated campaigns declared a winner to tell. The other keys
    (``inputs``, ``campaign``, ``headlines``, ``opens``, ``regret``, ...) are
    those of ``headliner plan --format json``.
    """

    model_config = ConfigDict(extra="allow")

    replications: int
    seed: int | None
    hours_to_decision: dict[str, Any]
    sends_to_decision: dict[str, Any]
    no_decision_share: float | None
    p_best: float | None
    p_within_1pct: float | None
    extra_opens_vs_even: dict[str, Any]
    extra_opens_vs_ab_test: dict[str, Any]
    ab_test_sends_per_arm: int | None
    verdict: str
    recommendations: dict[str, Any] | None = None


class ErrorDetail(BaseModel):
    """One reason a request was refused: where (``loc``), why (``msg``), what kind (``type``).

    ``loc`` starts with ``body``, ``path``, ``query`` or ``header`` and names the
    offending field for a malformed request; it names the parameter, or is
    empty, for a refusal by the experiment's rules or state.
    """

    loc: list[str | int]
    msg: str
    type: str


class ErrorPublic(BaseModel):
    """Every error response (4xx and 503): a list of reasons, FastAPI's validation shape.

    The offending input is never echoed: it may not even be representable as JSON.
    """

    detail: list[ErrorDetail]

    @staticmethod
    def body(msg: str, type: str, loc: Sequence[str | int] = ()) -> dict[str, Any]:
        """The body of an error with one reason, as a plain dict."""
        return {"detail": [{"loc": list(loc), "msg": msg, "type": type}]}

    @staticmethod
    def of_errors(errors: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """The body of a validation error, from pydantic's ``errors()`` without the input."""
        return {
            "detail": [
                {
                    "loc": [p if isinstance(p, int) else str(p) for p in e["loc"]],
                    "msg": str(e["msg"]),
                    "type": str(e["type"]),
                }
                for e in errors
            ]
        }


class ApiKeyPublic(BaseModel):
    """A stored key (never its secret)."""

    id: str
    name: str
    created_at: Timestamp
    revoked_at: Timestamp | None
    scope: KeyScope = Field(
        default=KeyScope.FULL,
        description="full: every route; read: GET on /v1 and the dashboard only",
    )

    @classmethod
    def of(cls, record: ApiKeyRecord) -> ApiKeyPublic:
        """From the stored record."""
        return cls(
            id=record.id,
            name=record.name,
            created_at=record.created_at,
            revoked_at=record.revoked_at,
            scope=record.scope,
        )
