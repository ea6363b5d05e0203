"""Scenario files: clear ``file:line: message`` errors; the ``simulate`` command."""
from __future__ import annotations

import argparse
import json

import pytest
import structlog

from controller.pacing.scenario import load_scenario
from dialbox import cmd_simulate
from firmware.errors import UserError

GOOD = """\
operators: 6
lines: 20
duration_s: 900
answer_prob: 0.25
busy_prob: 0.1
unreachable_prob: 0.1
time_to_answer_s: {mean: 9, sd: 3}
no_answer_timeout_s: 30
talk_s: {mean: 100, sd: 60}
wrap_s:
  mean: 15
  sd: 5
abandon_target: 0.03
seed: 4
"""


def _write(tmp_path, text: str):
    path = tmp_path / "floor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_scenario(path)
    return str(err.value).replace(str(path), "F")


def test_good_scenario_loads(tmp_path):
    sc = load_scenario(_write(tmp_path, GOOD))
    assert (sc.operators, sc.lines, sc.wrap_s.mean, sc.seed, sc.name) == (6, 20, 15.0, 4, "floor")
    assert sc.compliance == "us-regf" and sc.answer_prob_at(500.0) == 0.25


@pytest.mark.parametrize("edit,expected", [
    (("operators: 6", "operators: six"), "F:1: operators must be an integer, got 'six'"),
    (("lines: 20", "lines: 0"), "F:2: lines must be between 1 and 10000, got 0"),
    (("answer_prob: 0.25", "answer_prob: 0.9"),
     "F:4: answer_prob + busy_prob + unreachable_prob must be <= 1, got 1.100"),
    (("  sd: 5", "  sd: -5"), "F:12: wrap_s.sd must be between 0 and 1e+06, got -5"),
    (("talk_s: {mean: 100, sd: 60}", "talk_s: 100"),
     "F:9: talk_s must be a mapping with mean and sd"),
    (("seed: 4", "sede: 4"), "F:14: unknown key 'sede'; did you mean 'seed'?"),
    (("abandon_target: 0.03", "abandon_target: 0.05"),
     "F:13: abandon_target must be between 0.0001 and 0.03, got 0.05"),
    (("seed: 4", "compliance: fcc"), "F:14: compliance must be one of us-regf"),
    (("duration_s: 900", "duration_s: [9"), "F:4: YAML syntax error"),
])
def test_bad_values_name_file_and_line(tmp_path, edit, expected):
    old, new = edit
    assert old in GOOD
    assert _error(tmp_path, GOOD.replace(old, new)).startswith(expected)


def test_missing_keys_and_every_problem_reported_together(tmp_path):
    text = GOOD.replace("lines: 20\n", "").replace("operators: 6", "operators: -1")
    message = _error(tmp_path, text)
    assert "F:1: required key 'lines' missing" in message
    text = GOOD.replace("operators: 6", "operators: -1").replace("lines: 20", "lines: x")
    message = _error(tmp_path, text)
    assert "F:1: operators must be between 1 and 1000" in message
    assert "F:2: lines must be an integer" in message


def test_answer_rates_by_hour_are_checked(tmp_path):
    good = load_scenario(_write(tmp_path, GOOD + "start_hour: 9\n"
                                "answer_prob_by_hour: {9: 0.1, 10: 0.3}\n"))
    assert good.answer_prob_at(3700.0) == 0.3
    message = _error(tmp_path, GOOD + "answer_prob_by_hour:\n  9: 0.1\n  25: 0.3\n  11: 2\n")
    assert "F:17: answer_prob_by_hour: hour must be an integer 0-23, got 25" in message
    assert "F:18: answer_prob_by_hour[11] must be between 0 and 1, got 2" in message


@pytest.mark.parametrize("text", ["", "- 1\n- 2\n", "just words\n"])
def test_not_a_mapping(tmp_path, text):
    assert _error(tmp_path, text).startswith("F:1: a scenario must be a mapping")


def test_unreadable_file(tmp_path):
    with pytest.raises(UserError, match="cannot read scenario"):
        load_scenario(tmp_path / "missing.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="not UTF-8"):
        load_scenario(tmp_path / "bin.yaml")


@pytest.fixture(autouse=True)
def _structlog_untouched():
    """The command configures structlog when nobody did; leave no trace for other tests."""
    yield
    structlog.reset_defaults()


def _cli(argv):
    parser = argparse.ArgumentParser(prog="dialbox")
    cmd_simulate.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_simulate_command_prints_json(tmp_path, capsys):
    path = _write(tmp_path, GOOD)
    assert _cli(["simulate", str(path), "--pacing", "predictive", "--seed", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pacing"] == "predictive"
    assert set(out) == {"pacing", "calls", "live_answers", "abandoned", "abandon_rate",
                        "agent_occupancy", "talk_min_per_agent_hour",
                        "connects_per_agent_hour", "mean_agent_wait_s",
                        "worst_day_abandon_rate"}
    assert out["calls"] >= out["live_answers"] >= out["abandoned"]
    assert _cli(["simulate", str(path), "--pacing", "oracle"]) == 0
    assert "agent_occupancy" in capsys.readouterr().out


def test_simulate_command_reports_bad_files_as_user_errors(tmp_path):
    path = _write(tmp_path, GOOD.replace("lines: 20", "lines: many"))
    with pytest.raises(UserError, match=r"floor.yaml:2: lines must be an integer"):
        _cli(["simulate", str(path), "--pacing", "issabel"])
    with pytest.raises(SystemExit):
        _cli(["simulate", str(path), "--pacing", "turbo"])
