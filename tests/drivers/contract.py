"""The contract every router driver must pass: :class:`DriverContract`, the suite each driver's tests subclass.

A driver's test module declares ``class TestXContract(DriverContract)`` and provides the fixtures the base class
names (an open driver, desired states, how to make traffic, a router holding an entry edgebill does not own); it
then inherits every test. NAPALM's shared getters suite is the model.

The suite is made of the ``check_*`` steps below: each takes an open driver and the desired state to use,
performs the steps it names and asserts what a user of the contract relies on. They return what they observed,
so that a driver's own tests can call them and go further.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

import pytest

from drivers.base import Driver, DriverError
from drivers.models import Action, ApplyResult, ChangeSet, CounterSample, Resource, RouterFacts, Scope
from policies.desired import DesiredState


def reconcile(driver: Driver, desired: DesiredState) -> tuple[ChangeSet, ApplyResult]:
    """One reconcile as the daemon runs it: read, plan, apply."""
    plan = driver.plan(desired, driver.read_state())
    return plan, driver.apply(plan)


def only(desired: DesiredState, keys: Iterable[str]) -> DesiredState:
    """``desired`` with only the subscribers named by ``keys``: what the daemon hands a scoped run."""
    wanted = set(keys)
    return replace(desired, subscribers=tuple(s for s in desired.subscribers if s.key in wanted))


def scoped_reconcile(driver: Driver, desired: DesiredState, keys: Iterable[str]) -> tuple[ChangeSet, ApplyResult]:
    """One run scoped to ``keys`` as the daemon runs it: read, plan and apply those subscribers only."""
    scope = Scope.of(desired, keys)
    plan = driver.plan(only(desired, scope.keys), driver.read_state(scope), scope)
    return plan, driver.apply(plan)


def check_scoped_run(driver: Driver, before: DesiredState, after: DesiredState, keys: Iterable[str]) -> ChangeSet:
    """From ``before`` (applied in full first), a run scoped to ``keys`` makes the router hold ``after``, when
    ``after`` differs from ``before`` only in those subscribers; a second scoped run writes nothing."""
    keys = set(keys)
    reconcile(driver, before)
    plan, _ = scoped_reconcile(driver, after, keys)
    assert plan.changes, "the scoped run found nothing to do"
    again, _ = scoped_reconcile(driver, after, keys)
    assert again.empty, "second scoped run would write: " + "; ".join(c.describe() for c in again.changes)
    full = driver.plan(after, driver.read_state())
    assert full.empty, "after the scoped run a full one would still write: " + "; ".join(
        c.describe() for c in full.changes
    )
    return plan


def check_signature(driver_cls: type) -> None:
    """Every method of :class:`drivers.base.Driver` exists on ``driver_cls`` with the same parameters."""
    for name, member in inspect.getmembers(Driver, inspect.isfunction):
        if name.startswith("_") and name not in ("__enter__", "__exit__"):
            continue
        impl = getattr(driver_cls, name, None)
        assert impl is not None, f"{driver_cls.__name__} lacks {name}()"
        want = list(inspect.signature(member).parameters)
        have = list(inspect.signature(impl).parameters)
        assert have == want, f"{driver_cls.__name__}.{name}{have} differs from Driver.{name}{want}"
    assert isinstance(getattr(driver_cls, "kind", None), str), f"{driver_cls.__name__}.kind must be a string"


def check_plan_is_pure(driver: Driver, desired: DesiredState) -> ChangeSet:
    """Planning twice against the same read gives the same change set, and planning writes nothing."""
    before = driver.read_state()
    first = driver.plan(desired, before)
    second = driver.plan(desired, before)
    assert first == second, "plan() is not deterministic"
    assert _norm(driver.read_state()) == _norm(before), "plan() changed the router"
    return first


def check_second_apply_writes_nothing(driver: Driver, desired: DesiredState) -> tuple[Resource, ...]:
    """After one reconcile, reading back and planning again gives an empty change set."""
    reconcile(driver, desired)
    actual = driver.read_state()
    again = driver.plan(desired, actual)
    assert again.empty, "second reconcile would write: " + "; ".join(c.describe() for c in again.changes)
    assert driver.apply(again).writes == 0
    return actual


def check_unowned_untouched(driver: Driver, desired: DesiredState) -> ChangeSet:
    """The plan never adds, changes or removes an entry the router reports as not owned by edgebill.

    The router must hold at least one such entry (set one up first), or there would be nothing to check.
    """
    actual = driver.read_state()
    unowned = {(r.kind, r.key) for r in actual if not r.owned}
    assert unowned, "the router holds no entry edgebill does not own: set one up before this check"
    plan = driver.plan(desired, actual)
    for change in plan.changes:
        assert (change.kind, change.key) not in unowned, f"plan touches an unowned entry: {change.describe()}"
    return plan


def check_changes_carry_only_differences(driver: Driver, desired: DesiredState, changed: DesiredState) -> ChangeSet:
    """After reconciling ``desired``, the plan to ``changed`` modifies entries in place, with only what differs.

    ``changed`` must alter something already on the router (a rate, a state), so the plan holds a CHANGE; each
    CHANGE names an entry that was read and carries only fields whose value differs from what was read.
    """
    reconcile(driver, desired)
    actual = driver.read_state()
    have = {(r.kind, r.key): r for r in actual}
    plan = driver.plan(changed, actual)
    changes = [c for c in plan.changes if c.action is Action.CHANGE]
    assert changes, "changing a subscriber planned no in-place change"
    for change in changes:
        current = have.get((change.kind, change.key))
        assert current is not None, f"a change to an entry that was not read: {change.describe()}"
        same = sorted(k for k, v in change.fields.items() if current.fields.get(k) == v)
        assert not same, f"{change.describe()} rewrites unchanged fields {same}"
    return plan


def check_counters(driver: Driver, keys: Iterable[str] = ()) -> dict[str, CounterSample]:
    """One sample per key, with a key, non-negative integer byte counts, an epoch and a timezone-aware time.

    Every key in ``keys`` (subscribers known to carry traffic) has a sample.
    """
    seen: dict[str, CounterSample] = {}
    for s in driver.counters():
        assert s.key, "sample without a key"
        assert s.key not in seen, f"two samples for {s.key}"
        assert isinstance(s.bytes_in, int) and s.bytes_in >= 0, f"bytes_in {s.bytes_in!r} for {s.key}"
        assert isinstance(s.bytes_out, int) and s.bytes_out >= 0, f"bytes_out {s.bytes_out!r} for {s.key}"
        assert s.epoch, f"empty epoch for {s.key}"
        assert isinstance(s.taken_at, datetime) and s.taken_at.tzinfo is not None, f"naive taken_at for {s.key}"
        seen[s.key] = s
    missing = set(keys) - set(seen)
    assert not missing, f"no counters for {sorted(missing)}"
    return seen


def check_empty_apply_is_noop(driver: Driver) -> None:
    """Applying an empty change set writes nothing and drops no session."""
    result = driver.apply(ChangeSet())
    assert result.writes == 0 and result.disconnected == ()


def check_idempotent_reapply(driver: Driver, desired: DesiredState) -> None:
    """Applying the same (non-empty) change set twice converges on the same state (writes are idempotent)."""
    plan = driver.plan(desired, driver.read_state())
    assert not plan.empty, "nothing to apply: pass a desired state that differs from the router"
    driver.apply(plan)
    try:
        driver.apply(plan)
    except DriverError as exc:
        raise AssertionError(f"re-applying the same change set failed: {exc}") from exc
    assert driver.plan(desired, driver.read_state()).empty


def check_facts(driver: Driver) -> RouterFacts:
    """Facts name the router, its software version, and a non-negative uptime."""
    facts = driver.facts()
    assert isinstance(facts, RouterFacts)
    assert facts.identity.strip(), "empty identity"
    assert facts.version.strip(), "empty version"
    assert isinstance(facts.uptime_seconds, int) and facts.uptime_seconds >= 0
    return facts


def check_removed_subscriber_is_gone(driver: Driver, desired: DesiredState) -> None:
    """Dropping a subscriber from the desired state removes it: a second plan is empty, its counters are gone.

    The full ``desired`` state is reconciled again at the end.
    """
    assert desired.subscribers, "needs at least one subscriber"
    gone = desired.subscribers[0]
    smaller = replace(desired, subscribers=desired.subscribers[1:])
    reconcile(driver, desired)
    plan, _ = reconcile(driver, smaller)
    assert any(c.action is Action.REMOVE for c in plan.changes), "removing a subscriber planned no removal"
    assert driver.plan(smaller, driver.read_state()).empty
    assert gone.key not in {s.key for s in driver.counters()}
    reconcile(driver, desired)


def _norm(resources: tuple[Resource, ...]) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    return sorted((r.kind, r.key, tuple(sorted(r.fields.items()))) for r in resources)


# --- the suite ------------------------------------------------------------------------------------------------


class DriverContract(ABC):
    """The whole contract, as tests. Subclass it as ``Test<Kind>Contract`` in the driver's tests and provide:

    * ``driver``: an open driver for a router (one that may hold what earlier tests left: each test reconciles the
      state it needs first);
    * ``desired``: a desired state of at least one subscriber the router can hold;
    * ``changed``: ``desired`` with something already on the router changed in place (a rate, a plan), so that
      reconciling one after the other writes in-place changes;
    * ``scoped_change``: a desired state that differs from ``desired`` only in some subscribers, and their keys,
      such that a full run to it afterwards has nothing left to do;
    * ``unowned``: an open driver for a router that holds at least one entry edgebill does not own (set up and
      removed by the fixture), to plan ``desired`` against;
    * ``carry_traffic`` (optional): makes the subscribers of the router move traffic before counters are read.

    A ``Test...`` subclass that leaves one of these out is refused when its module is imported.
    """

    #: Fixtures a subclass must provide (checked when it is defined, so that none is silently skipped).
    required: ClassVar[tuple[str, ...]] = ("driver", "desired", "changed", "scoped_change", "unowned")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("Test"):
            return
        missing = [name for name in cls.required if next(k for k in cls.__mro__ if name in vars(k)) is DriverContract]
        if missing:
            raise TypeError(f"{cls.__name__} must provide the fixtures {', '.join(missing)}")

    # --- what a driver's tests provide ------------------------------------------------------------------------

    @pytest.fixture
    @abstractmethod
    def driver(self, *args: Any, **kwargs: Any) -> Iterator[Driver]:
        """An open driver for the router under test."""

    @pytest.fixture
    @abstractmethod
    def desired(self, *args: Any, **kwargs: Any) -> DesiredState:
        """A desired state of at least one subscriber the router can hold."""

    @pytest.fixture
    @abstractmethod
    def changed(self, *args: Any, **kwargs: Any) -> DesiredState:
        """``desired`` with something already on the router changed in place."""

    @pytest.fixture
    @abstractmethod
    def scoped_change(self, *args: Any, **kwargs: Any) -> tuple[DesiredState, frozenset[str]]:
        """A desired state differing from ``desired`` only in the subscribers named, and their keys."""

    @pytest.fixture
    @abstractmethod
    def unowned(self, *args: Any, **kwargs: Any) -> Iterator[Driver]:
        """An open driver for a router holding at least one entry edgebill does not own."""

    @pytest.fixture
    def carry_traffic(self) -> Callable[[], None]:
        """Makes the router's subscribers move traffic (nothing to do by default)."""
        return lambda: None

    # --- the tests ---------------------------------------------------------------------------------------------

    def test_signature(self, driver: Driver) -> None:
        check_signature(type(driver))

    def test_facts(self, driver: Driver) -> None:
        check_facts(driver)

    def test_empty_apply_is_noop(self, driver: Driver) -> None:
        check_empty_apply_is_noop(driver)

    def test_plan_is_pure(self, driver: Driver, desired: DesiredState, changed: DesiredState) -> None:
        check_plan_is_pure(driver, desired)
        reconcile(driver, changed)
        assert not check_plan_is_pure(driver, desired).empty, "planning back from the changed state found nothing"

    def test_second_apply_writes_nothing(self, driver: Driver, desired: DesiredState, changed: DesiredState) -> None:
        check_second_apply_writes_nothing(driver, desired)
        reconcile(driver, changed)
        check_second_apply_writes_nothing(driver, desired)

    def test_counters(self, driver: Driver, desired: DesiredState, carry_traffic: Callable[[], None]) -> None:
        reconcile(driver, desired)
        carry_traffic()
        check_counters(driver, {s.key for s in desired.subscribers})

    def test_removed_subscriber_is_gone(self, driver: Driver, desired: DesiredState) -> None:
        check_removed_subscriber_is_gone(driver, desired)

    def test_changes_carry_only_differences(self, driver: Driver, desired: DesiredState, changed: DesiredState) -> None:
        check_changes_carry_only_differences(driver, desired, changed)

    def test_idempotent_reapply(self, driver: Driver, desired: DesiredState, changed: DesiredState) -> None:
        reconcile(driver, desired)
        check_idempotent_reapply(driver, changed)
        check_second_apply_writes_nothing(driver, desired)

    def test_unowned_untouched(self, unowned: Driver, desired: DesiredState) -> None:
        check_unowned_untouched(unowned, desired)

    def test_scoped_run(
        self, driver: Driver, desired: DesiredState, scoped_change: tuple[DesiredState, frozenset[str]]
    ) -> None:
        after, keys = scoped_change
        check_scoped_run(driver, desired, after, keys)


__all__ = [
    "DriverContract",
    "check_changes_carry_only_differences",
    "check_counters",
    "check_empty_apply_is_noop",
    "check_facts",
    "check_idempotent_reapply",
    "check_plan_is_pure",
    "check_removed_subscriber_is_gone",
    "check_scoped_run",
    "check_second_apply_writes_nothing",
    "check_signature",
    "check_unowned_untouched",
    "only",
    "reconcile",
    "scoped_reconcile",
]
