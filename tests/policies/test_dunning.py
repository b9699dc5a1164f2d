"""Dunning: a ladder of reminders and enforcement, released by payment, held by flags and promises."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from policies.desired import ServiceState
from policies.dunning import (
    AccountStanding,
    DunningDecision,
    DunningError,
    DunningStep,
    evaluate,
    validate_ladder,
)
from policies.money import Money, currency
from policies.rates import RateLimit

USD = currency("USD")
SLOW = RateLimit(1_000_000, 512_000)
DUE = date(2025, 3, 1)
LADDER = (
    DunningStep("reminder", 3, None, "remind", email_template="reminder.txt"),
    DunningStep("slow-down", 7, Money(1000, USD), "throttle", SLOW, "throttled.txt"),
    DunningStep("suspend", 14, None, "suspend", email_template="suspended.txt"),
    DunningStep("final-notice", 21, None, "remind", email_template="final.txt"),
    DunningStep("terminate", 60, Money(1, USD), "terminate"),
)


def owing(minor: int = 3000, **over: Any) -> AccountStanding:
    values: dict[str, Any] = {"oldest_unpaid_due": DUE, "unpaid": Money(minor, USD)}
    values.update(over)
    return AccountStanding(**values)


def on(days_past_due: int) -> date:
    return DUE + timedelta(days=days_past_due)


@pytest.mark.parametrize(
    ("account", "days", "step", "action", "state"),
    [
        (owing(), 0, None, "none", ServiceState.ACTIVE),  # due today
        (owing(), 2, None, "none", ServiceState.ACTIVE),
        (owing(), 3, "reminder", "remind", ServiceState.ACTIVE),
        (owing(), 7, "slow-down", "throttle", ServiceState.THROTTLED),
        (owing(999), 7, "reminder", "remind", ServiceState.ACTIVE),  # 9.99 is under the 10.00 throttle minimum
        (owing(999), 14, "suspend", "suspend", ServiceState.SUSPENDED),  # the minimum applies to its own step only
        (owing(), 13, "slow-down", "throttle", ServiceState.THROTTLED),
        (owing(), 14, "suspend", "suspend", ServiceState.SUSPENDED),
        (
            owing(),
            21,
            "final-notice",
            "remind",
            ServiceState.SUSPENDED,
        ),  # a reminder after suspension keeps it suspended
        (owing(), 59, "final-notice", "remind", ServiceState.SUSPENDED),
        (owing(), 60, "terminate", "terminate", "terminated"),
        (owing(), -5, None, "none", ServiceState.ACTIVE),  # not yet due
    ],
)
def test_ladder(account: AccountStanding, days: int, step: str | None, action: str, state: str) -> None:
    decision = evaluate(LADDER, account, on(days))
    assert (decision.step, decision.action, decision.service_state) == (step, action, state)
    assert decision.throttle_rate == (SLOW if state == ServiceState.THROTTLED else None)


def test_reason_explains_the_decision() -> None:
    decision = evaluate(LADDER, owing(), on(21))
    assert decision.reason == (
        "30.00 USD unpaid, 21 days past due 2025-03-01: reached step 'final-notice', "
        "service stays suspended since step 'suspend'"
    )


@pytest.mark.parametrize(
    "account",
    [
        owing(0),  # paid in full
        owing(-500),  # in credit
        AccountStanding(None, Money(3000, USD)),  # nothing overdue yet
    ],
)
def test_paying_releases(account: AccountStanding) -> None:
    assert evaluate(LADDER, account, on(30)) == DunningDecision(None, "none", ServiceState.ACTIVE, "nothing unpaid")


def test_never_suspend_caps_enforcement_at_reminders() -> None:
    decision = evaluate(LADDER, owing(never_suspend=True), on(30))
    assert (decision.step, decision.action, decision.service_state) == ("final-notice", "remind", ServiceState.ACTIVE)
    assert "account is marked never-suspend, holding suspend at step 'suspend'" in decision.reason
    before_any_reminder = (DunningStep("cut", 1, None, "suspend"),)
    held = evaluate(before_any_reminder, owing(never_suspend=True), on(5))
    assert (held.step, held.action, held.service_state) == (None, "none", ServiceState.ACTIVE)


def test_promise_to_pay_holds_until_its_date() -> None:
    promised = owing(promise_until=on(20))
    held = evaluate(LADDER, promised, on(15))
    assert (held.step, held.action, held.service_state) == ("reminder", "remind", ServiceState.ACTIVE)
    assert "promise to pay until 2025-03-21" in held.reason
    assert evaluate(LADDER, promised, on(20)).service_state == "active"  # the promised day itself is held
    lapsed = evaluate(LADDER, promised, on(21))
    assert (lapsed.step, lapsed.service_state) == ("final-notice", ServiceState.SUSPENDED)
    past_promise = evaluate(LADDER, owing(promise_until=on(2)), on(8))
    assert past_promise.service_state == ServiceState.THROTTLED


def test_stronger_throttle_later_wins() -> None:
    slower = RateLimit(256_000, 128_000)
    ladder = (DunningStep("slow", 5, None, "throttle", SLOW), DunningStep("slower", 10, None, "throttle", slower))
    assert evaluate(ladder, owing(), on(12)).throttle_rate == slower


@pytest.mark.parametrize(
    ("ladder", "reason"),
    [
        ((), "at least one step"),
        ((DunningStep("a", 5, None, "remind"), DunningStep("b", 5, None, "remind")), "must come after 'a'"),
        ((DunningStep("a", 5, None, "remind"), DunningStep("b", 3, None, "remind")), "must come after 'a'"),
        ((DunningStep("a", 1, None, "remind"), DunningStep("a", 3, None, "remind")), "used twice"),
        (
            (DunningStep("cut", 5, None, "suspend"), DunningStep("slow", 9, None, "throttle", SLOW)),
            "'slow' would throttle after 'cut' already did suspend",
        ),
        (
            (DunningStep("a", 1, Money(1, USD), "remind"), DunningStep("b", 3, Money(1, currency("EUR")), "remind")),
            "mixes currencies: EUR, USD",
        ),
    ],
)
def test_bad_ladders_are_refused(ladder: tuple[DunningStep, ...], reason: str) -> None:
    with pytest.raises(DunningError, match=reason):
        validate_ladder(ladder)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("", 1, None, "remind"), "name must not be empty"),
        (("x", -1, None, "remind"), "0 or more"),
        (("x", 1, None, "disconnect"), "unknown action 'disconnect'"),
        (("x", 1, None, "throttle"), "needs a throttle rate"),
        (("x", 1, None, "suspend", SLOW), "only throttle steps take a throttle rate"),
        (("x", 1, Money(-1, USD), "remind"), "is negative"),
        (("x", 1, None, "remind", None, " "), "email template"),
    ],
)
def test_bad_steps_are_refused(args: tuple[Any, ...], reason: str) -> None:
    with pytest.raises(DunningError, match=reason):
        DunningStep(*args)


def test_currency_mismatch_between_ladder_and_account_is_refused() -> None:
    euros = AccountStanding(DUE, Money(3000, currency("EUR")))
    with pytest.raises(DunningError, match="ladder amounts are in USD, the account owes in EUR"):
        evaluate(LADDER, euros, on(10))


def test_account_standing_is_typed() -> None:
    with pytest.raises(TypeError, match="Money"):
        AccountStanding(DUE, 30)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="promise date"):
        AccountStanding(DUE, Money(1, USD), promise_until="2025-03-05")  # type: ignore[arg-type]
