"""The pure diff every driver plans with: desired native entries matched to actual ones by ``(kind, key)``.

Nothing here knows a router kind: a driver renders its desired entries and reads its actual ones as
:class:`~drivers.models.Resource` values, and :func:`diff` lists the writes between them in dependency order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from drivers.models import Action, Change, Conflict, Resource


def diff(
    desired: Iterable[Resource],
    actual: Iterable[Resource],
    *,
    order: Sequence[str],
) -> tuple[tuple[Change, ...], tuple[Conflict, ...]]:
    """Match ``desired`` to ``actual`` by ``(kind, key)`` and list the writes.

    - A desired entry with no actual one is added (all its fields).
    - A desired entry whose owned actual differs is changed: only the differing fields are sent. Write-only
      fields are compared only when the router revealed them.
    - A desired entry whose key is held by an entry we do not own is a :class:`Conflict`, never a write.
    - An owned actual entry that is not desired is removed. Entries we do not own are never removed.

    ``order`` lists the kinds by dependency (profiles before the secrets that name them): additions and
    changes follow it, removals run in reverse after them. Within a kind, entries are sorted by key so that the
    plan is stable.
    """
    # Entries grouped by kind, then by key: a gateway's diff runs over tens of thousands of entries, so each one
    # costs a lookup by its key string, and the kinds are walked in ``order`` without sorting by rank.
    want = _by_kind(desired, order)
    have = _by_kind(actual, order)

    writes: list[Change] = []
    removes: list[Change] = []
    conflicts: list[Conflict] = []
    for kind, wanted in want.items():
        held = have[kind]
        # Most entries match exactly: only the others are looked at, in key order.
        todo = [key for key, d in wanted.items() if (h := held.get(key)) is None or not h.owned or h.fields != d.fields]
        for key in sorted(todo):
            d = wanted[key]
            a = held.get(key)
            if a is None:
                writes.append(Change(Action.ADD, d.kind, d.key, dict(d.fields), secret_fields=d.write_only))
                continue
            if not a.owned:
                conflicts.append(
                    Conflict(d.kind, d.key, "an entry with this key exists and is not managed by edgebill")
                )
                continue
            changed = {
                name: value
                for name, value in d.fields.items()
                if (name in a.fields or name not in d.write_only) and a.fields.get(name) != value
            }
            if changed:
                before = {name: a.fields.get(name, "") for name in changed}
                writes.append(
                    Change(
                        Action.CHANGE,
                        d.kind,
                        d.key,
                        changed,
                        before=before,
                        ref=a.ref,
                        secret_fields=d.write_only,
                    )
                )
    for kind in reversed(have):
        held = have[kind]
        for key in sorted(held.keys() - want[kind].keys()):
            a = held[key]
            if a.owned:
                removes.append(Change(Action.REMOVE, a.kind, a.key, {}, before=dict(a.fields), ref=a.ref))
    return (*writes, *removes), tuple(conflicts)


def _by_kind(resources: Iterable[Resource], order: Sequence[str]) -> dict[str, dict[str, Resource]]:
    """``kind -> key -> resource``, kinds in ``order``; a duplicate or a kind not in ``order`` is a ValueError."""
    out: dict[str, dict[str, Resource]] = {kind: {} for kind in order}
    for r in resources:
        bucket = out.get(r.kind)
        if bucket is None:
            raise ValueError(f"kind {r.kind!r} is not in the diff order")
        if r.key in bucket:
            raise ValueError(f"duplicate {r.kind} entry {r.key!r}")
        bucket[r.key] = r
    return out
