"""
SAMP value checks, scalar encodings and MType matching (DATA-*, MT-*).
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from samptwist.errors import SAMPValueError
from samptwist.mtype import (
    best_match,
    check_subscriptions,
    is_mtype,
    is_pattern,
    matches,
    subscription_for,
)
from samptwist.types import (
    check_value,
    decode_bool,
    decode_float,
    decode_int,
    encode_bool,
    encode_float,
    encode_int,
    from_native,
)

atom = st.from_regex(r"[0-9a-zA-Z_-]{1,6}", fullmatch=True)
mtypes = st.lists(atom, min_size=1, max_size=5).map(".".join)
samp_text = st.text(alphabet=st.sampled_from("\t\n\r" + "".join(map(chr, range(0x20, 0x80)))))
samp_values = st.recursive(
    samp_text,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(samp_text, children, max_size=4),
    max_leaves=20,
)


@given(samp_values)
def test_valid_values_pass(value):
    """DATA-TYPE-1/2: nested strings, lists and maps of legal text are accepted."""
    check_value(value)


@pytest.mark.parametrize(
    "bad", [1, 1.5, True, None, b"x", ["ok", 3], {"k": None}, {1: "x"}, "\x00", "\x1b", "é"]
)
def test_invalid_values_fail(bad):
    """DATA-TYPE-1/2: native scalars, bytes, None, bad keys and characters fail clearly."""
    with pytest.raises(SAMPValueError) as e:
        check_value(bad, "message")
    assert "message" in str(e.value)


def test_deep_nesting_refused():
    value = "x"
    for _ in range(200):
        value = [value]
    with pytest.raises(SAMPValueError, match="nested"):
        check_value(value)


@given(st.integers())
def test_int_round_trip(n):
    """DATA-ENC-1."""
    assert decode_int(encode_int(n)) == n


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trip(x):
    """DATA-ENC-2."""
    assert decode_float(encode_float(x)) == x


@pytest.mark.parametrize("text", ["1.5e-3", "-.5", "3.", "2E10", "+4"])
def test_float_grammar_accepts(text):
    assert decode_float(text) == float(text)


@pytest.mark.parametrize("text", ["nan", "inf", "1,5", "", "e5", "1e"])
def test_float_grammar_rejects(text):
    with pytest.raises(ValueError):
        decode_float(text)


def test_float_refuses_nan():
    with pytest.raises(ValueError):
        encode_float(float("nan"))


def test_bool_encoding():
    """DATA-ENC-3: encoder emits only 0/1; decoder is lenient like JSAMP."""
    assert encode_bool(True) == "1" and encode_bool(False) == "0"
    assert decode_bool("1") and decode_bool("-7") and not decode_bool("0")
    assert not decode_bool("true")


def test_from_native():
    assert from_native({"a": 1, "b": [True, 2.5, ("x",)]}) == {"a": "1", "b": ["1", "2.5", ["x"]]}
    with pytest.raises(SAMPValueError):
        from_native({"a": None})


@pytest.mark.parametrize("text", ["table.load.votable", "a", "x-samp.query.by-meta", "A_1.b-2"])
def test_mtype_syntax_valid(text):
    """MT-SYN-1."""
    assert is_mtype(text)


@pytest.mark.parametrize("text", ["table..load", ".a", "a.", "a b", "a.*", "*", "", 5])
def test_mtype_syntax_invalid(text):
    """MT-SYN-1."""
    assert not is_mtype(text)


@pytest.mark.parametrize("text", ["table.*", "*", "a.b"])
def test_pattern_valid(text):
    """MT-SUB-2."""
    assert is_pattern(text)


@pytest.mark.parametrize("text", ["tab*", "*.load", "table.*.votable", "a.**", "a*", ""])
def test_pattern_invalid(text):
    """MT-SUB-2."""
    assert not is_pattern(text)


@pytest.mark.parametrize(
    "pattern, mtype, expected",
    [
        ("a.b.*", "a.b.c", True),
        ("a.b.*", "a.b.c.d", True),
        ("a.b.*", "a.b", False),
        ("a.b.*", "a.bc", False),
        ("a.b.*", "a.bc.d", False),
        ("file.event.*", "file.events.load", False),
        ("file.event.*", "file.eventually", False),
        ("file.event.*", "file.event.save.xml", True),
        ("samp.*", "samp.app.ping", True),
        ("*", "anything.at.all", True),
        ("a.b", "a.b", True),
        ("a.b", "a.b.c", False),
    ],
)
def test_wildcard_matching(pattern, mtype, expected):
    """MT-SUB-3/4 and DIFF-1: X.* matches the subtree below X only."""
    assert matches(pattern, mtype) is expected


@given(mtypes, mtypes)
def test_wildcard_property(prefix, mtype):
    """MT-SUB-4: prefix.* matches m iff m's atoms strictly extend prefix's atoms."""
    expected = mtype.split(".")[: len(prefix.split("."))] == prefix.split(".") and len(
        mtype.split(".")
    ) > len(prefix.split("."))
    assert matches(prefix + ".*", mtype) is expected


@given(mtypes)
def test_star_and_exact_property(mtype):
    """MT-SUB-3: * matches everything; an MType matches itself."""
    assert matches("*", mtype) and matches(mtype, mtype)


def test_most_specific_annotation_wins():
    """MT-SUB-7: exact > longer prefix > *."""
    subs = {"*": {"n": "star"}, "a.*": {"n": "a"}, "a.b.*": {"n": "ab"}, "a.b.c": {"n": "abc"}}
    assert subscription_for(subs, "a.b.c") == {"n": "abc"}
    assert subscription_for(subs, "a.b.d") == {"n": "ab"}
    assert subscription_for(subs, "a.x") == {"n": "a"}
    assert subscription_for(subs, "z") == {"n": "star"}
    assert best_match(["a.*"], "b") is None


@pytest.mark.parametrize(
    "subs", [{"a.b": "x"}, {"tab*": {}}, {"a.*.b": {}}, ["a.b"], {"a": []}]
)
def test_bad_subscriptions(subs):
    """MT-SUB-1/2."""
    with pytest.raises(SAMPValueError):
        check_subscriptions(subs)
