"""``dialbox compliance check`` through the real command line entry point."""
from __future__ import annotations

import json

import pytest

import dialbox.cli


@pytest.fixture
def run(monkeypatch, capsys):
    """Run ``dialbox`` with only the compliance command registered; (code, stdout, stderr)."""
    monkeypatch.setattr(dialbox.cli, "_COMMAND_MODULES", ("dialbox.cmd_compliance",))

    def _run(*argv: str):
        code = dialbox.cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return _run


def test_check_allowed_prints_json(run):
    code, out, err = run("compliance", "check", "--phone", "8 (4012) 12-34-56",
                         "--at", "2026-01-12T08:00:00+02:00")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["allowed"] is True and doc["reasons"] == []
    assert doc["local_time"] == "2026-01-12T08:00:00+02:00"
    assert doc["zones"] == ["Europe/Kaliningrad"] and doc["profile"] == "ru-230fz"
    assert doc["next_allowed_at"] == "2026-01-12T06:00:00+00:00"


def test_check_refused_with_reasons_and_next_time(run):
    code, out, _ = run("compliance", "check", "--profile", "ru-230fz", "--phone", "89123456789",
                       "--region", "Калининградская область", "--at", "2026-05-09T06:30:00Z")
    doc = json.loads(out)
    assert code == 0 and doc["allowed"] is False
    assert doc["reasons"][0]["code"] == "holiday_hours"
    assert "Victory Day" in doc["reasons"][0]["text"]
    assert doc["next_allowed_at"] == "2026-05-09T07:00:00+00:00"


def test_check_with_history_file(run, tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps([
        {"at": "2026-01-12T10:00:00+03:00", "kind": "conversation", "phone": "+79161234567",
         "campaign": "soft-1"},
        {"at": "2026-01-12T11:00:00+03:00", "kind": "call"},
    ]), encoding="utf-8")
    code, out, _ = run("compliance", "check", "--phone", "+79123456789", "--tz", "Europe/Moscow",
                       "--at", "2026-01-12T12:00:00+03:00", "--history", str(history))
    doc = json.loads(out)
    assert [r["code"] for r in doc["reasons"]] == ["daily_limit"]
    # the default slides: 24 hours after the conversation, the window that refused is named
    assert doc["next_allowed_at"] == "2026-01-13T07:00:00+00:00"
    window = doc["reasons"][0]["window"]
    assert window["reading"] == "rolling" and window["window"] == "any 24 hours"
    assert window["scope"] == "person" and (window["count"], window["maximum"]) == (1, 1)
    assert window["contacts"] == ["2026-01-12T07:00:00+00:00"]
    code, out, _ = run("compliance", "check", "--phone", "+79123456789", "--tz", "Europe/Moscow",
                       "--at", "2026-01-12T12:00:00+03:00", "--history", str(history),
                       "--reading", "calendar")
    doc = json.loads(out)
    assert doc["profile"] == "ru-230fz:calendar"
    assert doc["reasons"][0]["window"]["window"] == "a calendar day"
    assert doc["next_allowed_at"] == "2026-01-13T05:00:00+00:00"  # 08:00 the next day


def test_history_file_across_a_week_boundary_names_the_rolling_week(run, tmp_path):
    # Sunday + Monday: a third conversation on Tuesday is 3 in 3 days.
    history = tmp_path / "history.json"
    history.write_text(json.dumps([
        {"at": "2026-01-18T10:00:00+03:00", "kind": "conversation"},
        {"at": "2026-01-19T10:00:00+03:00", "kind": "conversation"},
    ]), encoding="utf-8")
    argv = ("compliance", "check", "--phone", "+79123456789", "--tz", "Europe/Moscow",
            "--at", "2026-01-20T10:00:00+03:00", "--history", str(history))
    doc = json.loads(run(*argv)[1])
    assert [r["code"] for r in doc["reasons"]] == ["weekly_limit"]
    assert doc["reasons"][0]["window"]["window"] == "any 7 days"
    assert "2 conversations already with this person in the 7 days" in doc["reasons"][0]["text"]
    assert doc["next_allowed_at"] == "2026-01-25T07:00:00+00:00"  # Sunday's one leaves
    assert json.loads(run(*argv, "--reading", "calendar")[1])["allowed"] is True


def test_check_sms_and_dnc(run):
    code, out, _ = run("compliance", "check", "--phone", "+74012123456", "--channel", "sms",
                       "--at", "2026-01-12T10:00:00Z", "--dnc", "complaint")
    doc = json.loads(out)
    assert doc["channel"] == "sms" and doc["reasons"][0]["code"] == "dnc"
    assert doc["next_allowed_at"] is None


def test_unknown_timezone_is_reported_not_an_error(run):
    code, out, _ = run("compliance", "check", "--phone", "+80012345678",
                       "--at", "2026-01-12T10:00:00Z")
    doc = json.loads(out)
    assert code == 0 and doc["reasons"][0]["code"] == "unknown_timezone"
    assert doc["local_time"] is None


@pytest.mark.parametrize("argv,message", [
    (["--profile", "ru-999"], "unknown compliance profile 'ru-999'"),
    (["--phone", "12"], "phone '12' is not a valid number"),
    (["--at", "yesterday"], "--at: 'yesterday' is not an ISO 8601 time"),
    (["--at", "2026-01-12T10:00:00"], "--at: '2026-01-12T10:00:00' has no UTC offset"),
    (["--tz", "Europe/Atlantis"], "time zone 'Europe/Atlantis' is not an IANA zone"),
    (["--region", "Свердловская обалсть"], "did you mean Свердловская область"),
    (["--history", "/nonexistent/h.json"], "/nonexistent/h.json: cannot read"),
    (["--profile", "us-regf", "--reading", "calendar"], "'us-regf' has no calendar reading"),
])
def test_bad_input_is_one_line_user_error(run, argv, message):
    base = {"--phone": "+79123456789", "--at": "2026-01-12T10:00:00Z"}
    args = dict(base)
    args.update(dict(zip(argv[::2], argv[1::2])))
    flat = [x for kv in args.items() for x in kv]
    code, out, err = run("compliance", "check", *flat)
    assert code == 1 and out == ""
    assert err.startswith("dialbox: error: compliance check: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("content,message", [
    ("{not json", "not a JSON file"),
    ('{"at": "x"}', "expected a JSON list"),
    ('[{"at": "2026-01-12T10:00:00Z", "kind": "visit"}]', "contact #1, field 'kind'"),
    ('[{"kind": "sms"}]', "contact #1, field 'at'"),
    ('[{"at": "2026-01-12T10:00:00Z", "kind": "sms"}, 5]', "contact #2"),
    ('[{"at": "2026-01-12T10:00:00Z", "kind": "sms", "phone": "12"}]',
     "contact #1, field 'phone': phone '12' is not a valid number"),
])
def test_bad_history_file_names_the_row(run, tmp_path, content, message):
    path = tmp_path / "h.json"
    path.write_text(content, encoding="utf-8")
    code, _, err = run("compliance", "check", "--phone", "+79123456789",
                       "--at", "2026-01-12T10:00:00Z", "--history", str(path))
    assert code == 1 and message in err and str(path) in err


def test_profiles_lists_the_default(run):
    code, out, _ = run("compliance", "profiles")
    assert code == 0 and "ru-230fz (default)" in out and "us-regf" in out and "none" in out


@pytest.mark.parametrize("debt,codes", [("A", ["regf_7in7"]), ("B", []), (None, [])])
def test_regf_history_counts_per_debt(run, tmp_path, debt, codes):
    history = tmp_path / "history.json"
    history.write_text(json.dumps([
        {"at": f"2026-01-{day:02d}T12:00:00-05:00", "kind": "call", "debt": "A"}
        for day in range(5, 12)]), encoding="utf-8")
    argv = ["compliance", "check", "--profile", "us-regf", "--phone", "+12125551234",
            "--tz", "America/New_York", "--at", "2026-01-11T15:00:00-05:00",
            "--history", str(history)] + (["--debt", debt] if debt else [])
    code, out, _ = run(*argv)
    assert code == 0 and [r["code"] for r in json.loads(out)["reasons"]] == codes
