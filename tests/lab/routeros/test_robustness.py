"""Arbitrary requests: the router always answers with a proper reply and never raises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.routeros.menus import MENUS
from lab.routeros.router import Router

_COMMANDS = st.sampled_from(
    [f"{path}/{verb}" for path, spec in MENUS.items() for verb in sorted(spec.commands)] + ["/x/y", "/", ""]
)
_NAMES = st.sampled_from(
    sorted({f.name for spec in MENUS.values() for f in spec.fields} | {".id", "numbers", "value-name", "count-only"})
)
_VALUES = st.one_of(
    st.sampled_from(["", "yes", "no", "*1", "*0", "default", "none", "10.0.0.1", "5M/10M", "1h", "ether1", "x"]),
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=12),
)
_WORDS = st.one_of(
    st.builds(lambda n, v: f"={n}={v}", _NAMES, _VALUES),
    st.builds(lambda n, v: f"?={n}={v}", _NAMES, _VALUES),
    st.builds(lambda op, n: f"?{op}{n}", st.sampled_from(["", "-", "<", ">"]), _NAMES),
    st.builds(lambda ops: f"?#{ops}", st.text(alphabet="0123!&|.", max_size=6)),
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=10),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_COMMANDS, st.lists(_WORDS, max_size=5)), min_size=1, max_size=6))
def test_any_request_gets_a_well_formed_reply(requests: list[tuple[str, list[str]]]) -> None:
    router = Router(redial_delay=1)
    router.execute(["/ip/pool/add", "=name=p", "=ranges=10.0.0.2-10.0.0.9"])
    router.execute(["/ppp/profile/add", "=name=plan", "=rate-limit=1M/2M", "=remote-address=p"])
    router.execute(["/ppp/secret/add", "=name=u", "=profile=plan"])
    router.advance(1)
    for command, words in requests:
        outcome = router.execute([command, *words])
        assert outcome.sentences[-1][0] == "!done"
        for sentence in outcome.sentences[:-1]:
            assert sentence[0] in ("!re", "!trap", "!empty")
            if sentence[0] == "!trap":
                assert [word.split("=")[1] for word in sentence[1:]] in (["message"], ["category", "message"])
        router.advance(2)
    for path in MENUS:
        router.items(path)
