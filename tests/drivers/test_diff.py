"""The pure diff shared by every driver."""

from __future__ import annotations

import pytest

from drivers.diff import diff
from drivers.models import Action, Resource

ORDER = ("ppp/profile", "ppp/secret")


def res(kind: str, key: str, *, owned: bool = True, ref: str | None = None, **fields: str) -> Resource:
    return Resource(kind, key, fields, owned=owned, ref=ref)


def test_identical_state_plans_nothing() -> None:
    state = [res("ppp/profile", "10M", rate_limit="5M/10M"), res("ppp/secret", "alice", profile="10M")]
    changes, conflicts = diff(state, state, order=ORDER)
    assert changes == ()
    assert conflicts == ()


def test_adds_in_dependency_order_and_removes_in_reverse() -> None:
    desired = [
        res("ppp/secret", "bob", profile="20M"),
        res("ppp/profile", "20M", rate_limit="10M/20M"),
    ]
    actual = [
        res("ppp/profile", "old", ref="*5", rate_limit="1M/1M"),
        res("ppp/secret", "carol", ref="*9", profile="old"),
    ]
    changes, _ = diff(desired, actual, order=ORDER)
    assert [(c.action, c.kind, c.key) for c in changes] == [
        (Action.ADD, "ppp/profile", "20M"),
        (Action.ADD, "ppp/secret", "bob"),
        (Action.REMOVE, "ppp/secret", "carol"),
        (Action.REMOVE, "ppp/profile", "old"),
    ]
    assert changes[2].ref == "*9"


def test_change_sends_only_changed_fields() -> None:
    desired = [res("ppp/secret", "alice", profile="20M", service="pppoe", disabled="false")]
    actual = [res("ppp/secret", "alice", ref="*1", profile="10M", service="pppoe", disabled="false")]
    (change,), _ = diff(desired, actual, order=ORDER)
    assert change.action is Action.CHANGE
    assert dict(change.fields) == {"profile": "20M"}
    assert change.before == {"profile": "10M"}
    assert change.ref == "*1"
    assert change.describe() == "~ ppp/secret alice: profile '10M' -> '20M'"


def test_unowned_entries_are_never_touched() -> None:
    desired = [res("ppp/secret", "alice", profile="10M")]
    actual = [res("ppp/secret", "alice", owned=False, profile="x"), res("ppp/secret", "zed", owned=False)]
    changes, conflicts = diff(desired, actual, order=ORDER)
    assert changes == ()
    assert [(c.kind, c.key) for c in conflicts] == [("ppp/secret", "alice")]


def test_write_only_fields_are_sent_on_add_and_compared_only_when_revealed() -> None:
    secret = Resource(
        "ppp/secret", "alice", {"profile": "10M", "password": "s3cret"}, write_only=frozenset({"password"})
    )
    (add,), _ = diff([secret], [], order=ORDER)
    assert add.fields["password"] == "s3cret"
    assert "s3cret" not in add.describe()
    hidden = res("ppp/secret", "alice", profile="10M")
    assert diff([secret], [hidden], order=ORDER) == ((), ())
    revealed = res("ppp/secret", "alice", profile="10M", password="old")
    (change,), _ = diff([secret], [revealed], order=ORDER)
    assert dict(change.fields) == {"password": "s3cret"}
    assert "s3cret" not in change.describe() and "old" not in change.describe()


def test_unknown_kind_and_duplicate_keys_are_driver_bugs() -> None:
    with pytest.raises(ValueError, match="not in the diff order"):
        diff([res("queue/simple", "q")], [], order=ORDER)
    with pytest.raises(ValueError, match="duplicate"):
        diff([res("ppp/secret", "a"), res("ppp/secret", "a")], [], order=ORDER)
