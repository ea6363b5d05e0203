"""+CME/+CMS ERROR classification and Huawei ^CEND cause mapping."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.gsm.errors import (
    CME, CMS, CmeAction, CmsAction, cend_to_q850, cme_error, cms_error, parse_error_line,
)
from firmware.lineapi import Outcome, classify_cause


@pytest.mark.parametrize(("code", "action"), [
    (14, CmeAction.RETRY), (515, CmeAction.RETRY), (30, CmeAction.RETRY), (31, CmeAction.RETRY),
    (10, CmeAction.NEEDS_PERSON), (11, CmeAction.NEEDS_PERSON), (12, CmeAction.NEEDS_PERSON),
    (13, CmeAction.NEEDS_PERSON), (262, CmeAction.NEEDS_PERSON), (16, CmeAction.NEEDS_PERSON),
    (0, CmeAction.FATAL), (3, CmeAction.OTHER), (4, CmeAction.OTHER), (21, CmeAction.OTHER),
    (9999, CmeAction.OTHER),
])
def test_cme_codes(code, action):
    error = cme_error(code)
    assert error.code == code and error.action is action
    assert error.needs_person == (action is CmeAction.NEEDS_PERSON)


def test_needs_person_reason_names_the_code():
    error = parse_error_line("+CME ERROR: 12")
    assert error.needs_person
    assert error.reason == "+CME ERROR 12: SIM PUK required"


@pytest.mark.parametrize(("line", "code", "action"), [
    ("+CME ERROR: SIM not inserted", 10, CmeAction.NEEDS_PERSON),
    ("+CME ERROR: sim pin required", 11, CmeAction.NEEDS_PERSON),
    ("+CME ERROR: SIM PUK required\r\n", 12, CmeAction.NEEDS_PERSON),
    ("+CME ERROR: SIM busy", 14, CmeAction.RETRY),
    ("+CME ERROR: SIM not ready", 14, CmeAction.RETRY),
    ("+CME ERROR: no network service", 30, CmeAction.RETRY),
    ("+CME ERROR: operation not allowed", 3, CmeAction.OTHER),
    ("+CME ERROR: Invalid characters in dial string", 27, CmeAction.OTHER),
    ("+cme error: 515", 515, CmeAction.RETRY),
    ("+CMS ERROR: SIM not inserted", 310, CmsAction.OTHER_SIM),
    ("+CMS ERROR: invalid PDU mode parameter", 304, CmsAction.REJECTED),
    ("+CMS ERROR: SMSC address unknown", 330, CmsAction.OTHER_SIM),
    ("+CMS ERROR: network timeout", 332, CmsAction.RETRY_LATER),
])
def test_text_forms_map_to_codes(line, code, action):
    error = parse_error_line(line)
    assert (error.code, error.action) == (code, action)


@pytest.mark.parametrize(("code", "action"), [
    (1, CmsAction.NEVER),                                  # unassigned number: never this number
    (195, CmsAction.NEVER),                                # invalid SME address
    (21, CmsAction.OTHER_SIM), (8, CmsAction.OTHER_SIM), (10, CmsAction.OTHER_SIM),
    (50, CmsAction.OTHER_SIM), (330, CmsAction.OTHER_SIM), (310, CmsAction.OTHER_SIM),
    (38, CmsAction.RETRY_LATER), (41, CmsAction.RETRY_LATER), (42, CmsAction.RETRY_LATER),
    (47, CmsAction.RETRY_LATER), (331, CmsAction.RETRY_LATER), (332, CmsAction.RETRY_LATER),
    (500, CmsAction.RETRY_LATER), (314, CmsAction.RETRY_LATER), (192, CmsAction.RETRY_LATER),
    (304, CmsAction.REJECTED), (305, CmsAction.REJECTED), (144, CmsAction.REJECTED),
    (150, CmsAction.REJECTED),                             # unlisted TP-FCS: the message itself
    (77, CmsAction.RETRY_LATER), (600, CmsAction.RETRY_LATER),
])
def test_cms_codes(code, action):
    error = cms_error(code)
    assert (error.code, error.action) == (code, action)


def test_only_sim_problems_need_a_person_on_cms():
    assert [c for c in range(300, 600) if cms_error(c).needs_person] == [310, 311, 312, 313, 315, 316]
    assert not cms_error(1).needs_person and not cms_error(314).needs_person


def test_tables_name_every_code_once_and_classify_it():
    for table, actions in ((CME, CmeAction), (CMS, CmsAction)):
        for code, (name, action) in table.items():
            assert name and isinstance(action, actions), code


def test_unknown_text_keeps_the_text():
    error = parse_error_line("+CME ERROR: modem on fire")
    assert (error.code, error.name, error.action) == (None, "modem on fire", CmeAction.OTHER)
    assert parse_error_line("+CMS ERROR: ???").action is CmsAction.RETRY_LATER


def test_non_ascii_digits_are_text_not_codes():
    error = parse_error_line("+CME ERROR: ²")
    assert (error.code, error.name) == (None, "²")


@pytest.mark.parametrize("line", ["OK", "ERROR", "+CMGS: 12", "+CME ERROR", "", "CME ERROR: 10"])
def test_other_lines_are_not_errors(line):
    assert parse_error_line(line) is None


@given(st.text(max_size=80))
def test_parse_error_line_never_raises(line):
    for candidate in (line, "+CME ERROR: " + line, "+CMS ERROR: " + line):
        result = parse_error_line(candidate)
        assert result is None or result.kind in ("cme", "cms")


@pytest.mark.parametrize(("end_status", "cc_cause", "q850", "outcome"), [
    (104, 17, 17, Outcome.BUSY),                  # network ended: user busy
    (104, 1, 1, Outcome.INVALID_NUMBER),          # unassigned number
    (100, 19, 19, Outcome.NO_ANSWER),
    (104, 21, 21, Outcome.REJECTED),
    (104, 34, 34, Outcome.CONGESTION),
    (29, None, 16, Outcome.FAILED),               # we hung up before any alerting
    (21, None, 34, Outcome.CONGESTION),           # our SIM has no service: try another line
    (106, 0, 34, Outcome.CONGESTION),
    (105, None, 47, Outcome.CONGESTION),          # no funds on the SIM
    (100, 163, 41, Outcome.CONGESTION),           # RRC release (Qualcomm-internal cause)
    (104, None, 31, Outcome.FAILED),
    (7, None, None, Outcome.FAILED),
    (None, None, None, Outcome.FAILED),
])
def test_cend_to_q850(end_status, cc_cause, q850, outcome):
    assert cend_to_q850(end_status, cc_cause) == q850
    assert classify_cause(q850, alerted=False, answered=False) is outcome


def test_cend_after_alerting_is_no_answer():
    assert classify_cause(cend_to_q850(29, None), alerted=True, answered=False) is Outcome.NO_ANSWER
