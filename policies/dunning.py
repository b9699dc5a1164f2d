"""Dunning: what to do about an overdue account, from a configurable ladder of steps.

The rules, exactly:

* A ladder is a sequence of :class:`DunningStep`, each reached when the oldest unpaid invoice is at least
  ``days_past_due`` days past its due date (the due date itself is day 0) and, if the step has a
  ``min_amount``, the unpaid balance is at least that amount. Ladders are validated by
  :func:`validate_ladder`: at least one step, unique names, strictly increasing ``days_past_due``, one
  currency, and enforcement that never eases further down the ladder (``throttle`` < ``suspend`` <
  ``terminate``; reminders may appear anywhere).
* :func:`evaluate` is stateless and decides from the account's standing on ``today`` alone:

  1. Nothing unpaid (no oldest unpaid due date, or a balance of zero or less): service ``active``, no step.
     Paying therefore releases a throttled or suspended account at the next evaluation.
  2. Otherwise the decision's step is the last step reached, and its action is that step's action. The
     service state is set by the most severe enforcement among all steps reached (a reminder after a
     suspension keeps the account suspended): ``throttle`` -> ``"throttled"`` (at that step's
     ``throttle_rate``), ``suspend`` -> ``"suspended"``, ``terminate`` -> ``"terminated"``.
  3. Enforcement is held, and the service stays ``active``, when the account is marked ``never_suspend``
     (always) or has a promise to pay until a date on or after ``today``. While held, the decision reports
     the last *reminder* step reached (action ``"remind"``), or no step if none was reached. When a promise
     lapses unpaid, enforcement resumes at the step the overdue days have reached by then.
* Amounts are compared exactly; a ladder and an account in different currencies are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, get_args

from policies.desired import ServiceState
from policies.money import Currency, Money
from policies.rates import RateLimit

__all__ = [
    "AccountStanding",
    "DunningAction",
    "DunningDecision",
    "DunningError",
    "DunningStep",
    "StepAction",
    "evaluate",
    "validate_ladder",
]

StepAction = Literal["remind", "throttle", "suspend", "terminate"]
DunningAction = Literal["none", "remind", "throttle", "suspend", "terminate"]

_STEP_ACTIONS: tuple[str, ...] = get_args(StepAction)
_SEVERITY: dict[str, int] = {"remind": 0, "throttle": 1, "suspend": 2, "terminate": 3}
_STATE_FOR: dict[str, ServiceState] = {
    "remind": ServiceState.ACTIVE,
    "throttle": ServiceState.THROTTLED,
    "suspend": ServiceState.SUSPENDED,
    "terminate": ServiceState.TERMINATED,
}


class DunningError(ValueError):
    """A dunning step, ladder or account standing that breaks the rules of this module."""


@dataclass(frozen=True)
class DunningStep:
    """One rung of the ladder; ``throttle_rate`` is required for, and only allowed on, ``throttle`` steps."""

    name: str
    days_past_due: int
    min_amount: Money | None
    action: StepAction
    throttle_rate: RateLimit | None = None
    email_template: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise DunningError("dunning step name must not be empty")
        where = f"dunning step {self.name!r}"
        if type(self.days_past_due) is not int or self.days_past_due < 0:
            raise DunningError(f"{where}: days past due must be a whole number of days, 0 or more")
        if self.action not in _STEP_ACTIONS:
            raise DunningError(f"{where}: unknown action {self.action!r}: expected one of {', '.join(_STEP_ACTIONS)}")
        if self.min_amount is not None:
            if not isinstance(self.min_amount, Money):
                raise TypeError(f"{where}: minimum amount must be Money, got {type(self.min_amount).__name__}")
            if self.min_amount.is_negative():
                raise DunningError(f"{where}: minimum amount {self.min_amount} is negative")
        if self.action == "throttle":
            if not isinstance(self.throttle_rate, RateLimit):
                raise DunningError(f"{where}: a throttle step needs a throttle rate")
        elif self.throttle_rate is not None:
            raise DunningError(f"{where}: only throttle steps take a throttle rate")
        if self.email_template is not None and (
            not isinstance(self.email_template, str) or not self.email_template.strip()
        ):
            raise DunningError(f"{where}: email template must be a non-empty name or None")


@dataclass(frozen=True)
class AccountStanding:
    """What dunning needs to know about an account on the day of evaluation."""

    oldest_unpaid_due: date | None
    unpaid: Money
    never_suspend: bool = False
    promise_until: date | None = None

    def __post_init__(self) -> None:
        for label, value in (("oldest unpaid due date", self.oldest_unpaid_due), ("promise date", self.promise_until)):
            if value is not None and type(value) is not date:
                raise TypeError(f"{label} must be a date or None, got {type(value).__name__}")
        if not isinstance(self.unpaid, Money):
            raise TypeError(f"unpaid must be Money, got {type(self.unpaid).__name__}")
        if not isinstance(self.never_suspend, bool):
            raise TypeError("never_suspend must be a bool")


@dataclass(frozen=True)
class DunningDecision:
    """The step reached (``None`` if none), the action it asks for, the resulting service state and why.

    ``throttle_rate`` is set when ``service_state == "throttled"``.
    """

    step: str | None
    action: DunningAction
    service_state: ServiceState
    reason: str
    throttle_rate: RateLimit | None = None


def validate_ladder(ladder: Sequence[DunningStep]) -> tuple[DunningStep, ...]:
    """Return the ladder as a tuple if it follows the module rules, else raise :class:`DunningError`."""
    steps = tuple(ladder)
    if not steps:
        raise DunningError("a dunning ladder needs at least one step")
    names: set[str] = set()
    currencies: set[Currency] = set()
    previous: DunningStep | None = None
    strongest: DunningStep | None = None
    for step in steps:
        if not isinstance(step, DunningStep):
            raise TypeError(f"dunning ladder entries must be DunningStep, got {type(step).__name__}")
        if step.name in names:
            raise DunningError(f"dunning step name {step.name!r} is used twice")
        names.add(step.name)
        if previous is not None and step.days_past_due <= previous.days_past_due:
            raise DunningError(
                f"dunning step {step.name!r} at {step.days_past_due} days must come after "
                f"{previous.name!r} at {previous.days_past_due} days"
            )
        if step.min_amount is not None:
            currencies.add(step.min_amount.currency)
        if step.action != "remind":
            if strongest is not None and _SEVERITY[step.action] < _SEVERITY[strongest.action]:
                raise DunningError(
                    f"dunning step {step.name!r} would {step.action} after {strongest.name!r} "
                    f"already did {strongest.action}"
                )
            strongest = step
        previous = step
    if len(currencies) > 1:
        raise DunningError(f"dunning ladder mixes currencies: {', '.join(sorted(c.code for c in currencies))}")
    return steps


def evaluate(ladder: Sequence[DunningStep], account: AccountStanding, today: date) -> DunningDecision:
    """Decide the dunning step, action and service state for ``account`` on ``today`` (see module rules)."""
    steps = validate_ladder(ladder)
    if type(today) is not date:
        raise TypeError(f"today must be a date, got {type(today).__name__}")
    if not isinstance(account, AccountStanding):
        raise TypeError(f"account must be an AccountStanding, got {type(account).__name__}")
    for step in steps:
        if step.min_amount is not None and step.min_amount.currency != account.unpaid.currency:
            raise DunningError(
                f"dunning ladder amounts are in {step.min_amount.currency}, the account owes in "
                f"{account.unpaid.currency}"
            )
    due = account.oldest_unpaid_due
    if due is None or not account.unpaid.is_positive():
        return DunningDecision(None, "none", ServiceState.ACTIVE, "nothing unpaid")
    overdue = (today - due).days
    reached = [
        step
        for step in steps
        if step.days_past_due <= overdue and (step.min_amount is None or account.unpaid >= step.min_amount)
    ]
    owed = f"{account.unpaid} unpaid, {overdue} days past due {due.isoformat()}"
    if not reached:
        return DunningDecision(None, "none", ServiceState.ACTIVE, f"{owed}: no dunning step reached")
    last = reached[-1]
    enforcing = [step for step in reached if step.action != "remind"]
    hold: str | None = None
    if account.never_suspend:
        hold = "account is marked never-suspend"
    elif account.promise_until is not None and today <= account.promise_until:
        hold = f"promise to pay until {account.promise_until.isoformat()}"
    if hold is not None or not enforcing:
        reminders = [step for step in reached if step.action == "remind"]
        if hold is not None and enforcing:
            why = f"{owed}: {hold}, holding {enforcing[-1].action} at step {enforcing[-1].name!r}"
        else:
            why = f"{owed}: reached step {last.name!r}"
        if not reminders:
            return DunningDecision(None, "none", ServiceState.ACTIVE, why)
        return DunningDecision(reminders[-1].name, "remind", ServiceState.ACTIVE, why)
    strongest = enforcing[-1]  # enforcement never eases down a valid ladder: the last is the strongest
    state = _STATE_FOR[strongest.action]
    rate = strongest.throttle_rate if state == ServiceState.THROTTLED else None
    why = f"{owed}: reached step {last.name!r}"
    if last is not strongest:
        why += f", service stays {state} since step {strongest.name!r}"
    return DunningDecision(last.name, last.action, state, why, rate)
