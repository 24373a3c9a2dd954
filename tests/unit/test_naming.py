"""
One rule finds a client by name for the Deferred helpers, the tracker, the
blocking facade and the command line (samptwist.client.naming).
"""

from samptwist.client.naming import matches_by_name, pick_by_name

CLIENTS = [("c3", "topcat"), ("c2", "TOPCAT-like"), ("c5", "ds9"), ("c4", "DS9"), ("c9", None)]


def test_exact_name_beats_a_case_insensitive_one():
    assert pick_by_name(CLIENTS, "DS9") == "c4"
    assert pick_by_name(CLIENTS, "ds9") == "c5"


def test_case_is_ignored_when_nothing_matches_exactly():
    # TOPCAT registers as "topcat"; users type "TOPCAT"
    assert pick_by_name(CLIENTS, "TOPCAT") == "c3"
    assert matches_by_name(CLIENTS, "Ds9") == ["c4", "c5"]


def test_first_id_in_string_order_wins_and_none_when_absent():
    assert pick_by_name([("c8", "x"), ("c10", "x"), ("c7", "x")], "x") == "c10"  # string order
    assert matches_by_name([("c8", "x"), ("c7", "x")], "x") == ["c7", "c8"]
    assert pick_by_name(CLIENTS, "aladin") is None
    assert matches_by_name(CLIENTS, "") == []
