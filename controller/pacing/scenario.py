"""Floor simulation scenarios from YAML, with ``file:line: message`` errors."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from controller.pacing.estimators import COMPLIANCE
from firmware.errors import UserError


@dataclass(frozen=True)
class Duration:
    """Mean and standard deviation of a log-normal duration, in seconds."""

    mean: float
    sd: float


@dataclass(frozen=True)
class Scenario:
    """A collection floor and its debtors."""

    name: str
    operators: int
    lines: int
    duration_s: float
    answer_prob: float
    busy_prob: float
    unreachable_prob: float
    time_to_answer_s: Duration
    no_answer_timeout_s: float
    talk_s: Duration
    wrap_s: Duration
    abandon_target: float = 0.03
    compliance: str = "us-regf"
    seed: int = 1
    start_hour: float = 9.0
    answer_prob_by_hour: dict = field(default_factory=dict)
    busy_s: Duration = Duration(4.0, 1.5)
    unreachable_s: Duration = Duration(6.0, 2.0)

    def answer_prob_at(self, t_s: float) -> float:
        """Answer probability at ``t_s`` seconds into the run (by the hour of the clock)."""
        if not self.answer_prob_by_hour:
            return self.answer_prob
        hour = int((self.start_hour + t_s / 3600.0) % 24)
        return self.answer_prob_by_hour.get(hour, self.answer_prob)


_REQUIRED = ("operators", "lines", "duration_s", "answer_prob", "busy_prob", "unreachable_prob",
             "time_to_answer_s", "no_answer_timeout_s", "talk_s", "wrap_s")
_OPTIONAL = ("name", "abandon_target", "compliance", "seed", "start_hour", "answer_prob_by_hour",
             "busy_s", "unreachable_s")


class _Mapping(dict):
    """A YAML mapping that remembers the line of each key."""

    line = 0
    key_lines: dict


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings carry line numbers."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    out = _Mapping()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; every problem is reported as ``file:line: message``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read scenario: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: scenario is not UTF-8 text") from None
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}:{line}: YAML syntax error: {problem}") from None
    if not isinstance(data, _Mapping):
        raise UserError(f"{path}:1: a scenario must be a mapping of keys "
                        f"({', '.join(_REQUIRED)})")
    return _Checker(path, data).scenario()


class _Checker:
    """Collects every problem of a scenario before reporting them together."""

    def __init__(self, path: Path, data: _Mapping) -> None:
        self.path = path
        self.data = data
        self.errors: list = []

    def _err(self, key: str | None, message: str, mapping: _Mapping | None = None) -> None:
        mapping = mapping if mapping is not None else self.data
        line = mapping.key_lines.get(key, mapping.line) if key is not None else mapping.line
        self.errors.append(f"{self.path}:{line}: {message}")

    def _number(self, key: str, lo: float, hi: float, integer: bool = False,
                mapping: _Mapping | None = None, label: str | None = None):
        mapping = mapping if mapping is not None else self.data
        label = label or key
        value = mapping.get(key)
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:
            kind = "an integer" if integer else "a number"
            self._err(key, f"{label} must be {kind}, got {value!r}", mapping)
            return None
        if not lo <= value <= hi:
            self._err(key, f"{label} must be between {lo:g} and {hi:g}, got {value!r}", mapping)
            return None
        return value

    def _duration(self, key: str, default: Duration | None = None) -> Duration | None:
        value = self.data.get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, _Mapping) or set(value) != {"mean", "sd"}:
            self._err(key, f"{key} must be a mapping with mean and sd (seconds), "
                           f"e.g. {{mean: 120, sd: 60}}; got {value!r}")
            return None
        mean = self._number("mean", 0.1, 1e6, mapping=value, label=f"{key}.mean")
        sd = self._number("sd", 0.0, 1e6, mapping=value, label=f"{key}.sd")
        if mean is None or sd is None:
            return None
        return Duration(float(mean), float(sd))

    def scenario(self) -> Scenario:
        data = self.data
        for key in data:
            if key not in _REQUIRED and key not in _OPTIONAL:
                close = difflib.get_close_matches(str(key), _REQUIRED + _OPTIONAL, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self._err(key, f"unknown key {key!r}{hint}")
        for key in _REQUIRED:
            if key not in data:
                self.errors.append(f"{self.path}:{data.line}: required key {key!r} missing")
        if self.errors:
            raise UserError("; ".join(self.errors))
        values = {
            "operators": self._number("operators", 1, 1000, integer=True),
            "lines": self._number("lines", 1, 10000, integer=True),
            "duration_s": self._number("duration_s", 1, 366 * 86400),
            "answer_prob": self._number("answer_prob", 0.0, 1.0),
            "busy_prob": self._number("busy_prob", 0.0, 1.0),
            "unreachable_prob": self._number("unreachable_prob", 0.0, 1.0),
            "no_answer_timeout_s": self._number("no_answer_timeout_s", 5, 300),
            "time_to_answer_s": self._duration("time_to_answer_s"),
            "talk_s": self._duration("talk_s"),
            "wrap_s": self._duration("wrap_s"),
            "busy_s": self._duration("busy_s", Duration(4.0, 1.5)),
            "unreachable_s": self._duration("unreachable_s", Duration(6.0, 2.0)),
        }
        compliance = data.get("compliance", "us-regf")
        if compliance not in COMPLIANCE:
            self._err("compliance", f"compliance must be one of {', '.join(COMPLIANCE)}, "
                                    f"got {compliance!r}")
            compliance = "us-regf"
        values["compliance"] = compliance
        cap = COMPLIANCE[compliance][1]
        if "abandon_target" in data:
            values["abandon_target"] = self._number("abandon_target", 0.0001, cap)
        else:
            values["abandon_target"] = cap
        values["seed"] = self._number("seed", 0, 2**63, integer=True) if "seed" in data else 1
        if "start_hour" in data:
            values["start_hour"] = self._number("start_hour", 0, 23.999)
        values["answer_prob_by_hour"] = self._by_hour()
        values["name"] = str(data.get("name", self.path.stem))
        rates = [values[k] for k in ("answer_prob", "busy_prob", "unreachable_prob")]
        if None not in rates and sum(rates) > 1.0 + 1e-9:
            self._err("answer_prob", f"answer_prob + busy_prob + unreachable_prob must be <= 1, "
                                     f"got {sum(rates):.3f}")
        if self.errors:
            raise UserError("; ".join(self.errors))
        return Scenario(**values)

    def _by_hour(self) -> dict:
        table = self.data.get("answer_prob_by_hour")
        if table is None:
            return {}
        if not isinstance(table, _Mapping):
            self._err("answer_prob_by_hour", "answer_prob_by_hour must map clock hours (0-23) "
                                             "to answer probabilities, e.g. {9: 0.15, 18: 0.3}")
            return {}
        out = {}
        for hour, prob in table.items():
            if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
                self._err(hour, f"answer_prob_by_hour: hour must be an integer 0-23, "
                                f"got {hour!r}", table)
                continue
            value = self._number(hour, 0.0, 1.0, mapping=table,
                                 label=f"answer_prob_by_hour[{hour}]")
            if value is not None:
                out[hour] = float(value)
        return out
