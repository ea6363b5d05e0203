"""Segments of a campaign (rules over account fields) and each one's dialing strategy, as data."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from firmware.errors import UserError

PHONE_KINDS = ("mobile", "home", "work", "third_party")
MODES = ("preview", "progressive", "predictive")
RULE_KEYS = ("dpd", "amount", "product", "region", "creditor", "last_outcome")

# Seconds until the next attempt after an outcome; a strategy overrides any of them.
DEFAULT_RETRY_S = {"busy": 600, "no_answer": 1800, "unreachable": 3600, "congestion": 300,
                   "failed": 900, "rejected": 4 * 3600, "abandoned": 3600, "callback": 3600,
                   "refusal": 24 * 3600, "third_party": 4 * 3600}


@dataclass(frozen=True)
class Strategy:
    """How a segment is dialed."""

    phone_order: tuple[str, ...] = ("mobile", "home", "work")
    attempts_per_day: int = 3
    max_attempts: int | None = None  # None: the campaign's max_attempts
    retry_s: dict = field(default_factory=dict)  # outcome -> seconds, over DEFAULT_RETRY_S
    priority: int = 0
    mode: str | None = None  # None: the campaign's dialing mode
    sms_rules: tuple[str, ...] = ()
    # The pacing target: the share of live answers the predictive pacer may abandon when it
    # dials this segment (0.01 = 1 %); None: the campaign's. Never above the law's cap.
    abandon_target: float | None = None

    def retry_delay(self, outcome: str) -> float:
        return float(self.retry_s.get(outcome, DEFAULT_RETRY_S.get(outcome, 900)))

    def to_json(self) -> dict:
        d = asdict(self)
        d["phone_order"], d["sms_rules"] = list(self.phone_order), list(self.sms_rules)
        return d

    @classmethod
    def from_json(cls, d: dict, where: object = "strategy") -> Strategy:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise UserError("{where}: unknown strategy keys {keys}; known: {known}", where=where,
                            keys=", ".join(sorted(unknown)),
                            known=", ".join(sorted(cls.__dataclass_fields__)))
        s = cls(**{k: tuple(v) if k in ("phone_order", "sms_rules") else v for k, v in d.items()})
        bad = [k for k in s.phone_order if k not in PHONE_KINDS]
        if bad or not s.phone_order:
            raise UserError("{where}: phone_order {order} must name phone kinds from {kinds}",
                            where=where, order=", ".join(s.phone_order),
                            kinds=", ".join(PHONE_KINDS))
        if s.mode is not None and s.mode not in MODES:
            raise UserError("{where}: mode {mode} is not one of {modes}", where=where,
                            mode=s.mode, modes=", ".join(MODES))
        if s.attempts_per_day < 1 or (s.max_attempts is not None and s.max_attempts < 1):
            raise UserError("{where}: attempts a day and attempts in all must be at least 1",
                            where=where)
        if any(not isinstance(v, (int, float)) or v < 0 for v in s.retry_s.values()):
            raise UserError("{where}: retry times are seconds (numbers >= 0)", where=where)
        check_target(s.abandon_target, where)
        return s


def check_target(target: float | None, where: object, cap: float = 1.0) -> None:
    """A pacing target is a share of live answers above 0 and at most ``cap`` (the law's)."""
    if target is None:
        return
    if isinstance(target, bool) or not isinstance(target, (int, float)) or \
            not 0.0 < target <= cap:
        shown = f"{target * 100:g} %" if isinstance(target, (int, float)) else target
        raise UserError("{where}: the pacing target is a share of abandoned calls above 0 % "
                        "and at most {cap} %, not {value}", where=where,
                        cap=f"{cap * 100:g}", value=shown)


@dataclass(frozen=True)
class Segment:
    """Accounts matching ``rules`` (all of them) belong here; the first matching segment wins."""

    name: str
    rules: dict = field(default_factory=dict)
    strategy: Strategy = field(default_factory=Strategy)
    script: str = ""  # what the operator says to this segment's debtors, shown on the card

    def __post_init__(self) -> None:
        # Rules compiled once: a million imported rows are matched against them.
        tests = tuple(("debt_amount" if key == "amount" else key, rule[0], rule[1], None)
                      if key in ("dpd", "amount") else (key, None, None, frozenset(rule))
                      for key, rule in self.rules.items())
        object.__setattr__(self, "_tests", tests)

    def matches(self, acc: dict) -> bool:
        for key, lo, hi, allowed in self._tests:
            value = acc.get(key)
            if allowed is not None:
                if value not in allowed:
                    return False
            elif value is None or (lo is not None and value < lo) or \
                    (hi is not None and value > hi):
                return False
        return True

    def to_json(self) -> dict:
        return {"name": self.name, "rules": self.rules, "strategy": self.strategy.to_json(),
                "script": self.script}

    @classmethod
    def from_json(cls, d: dict) -> Segment:
        name = d.get("name")
        if not name or not isinstance(name, str):
            raise UserError("a segment needs a name")
        rules = dict(d.get("rules") or {})
        for key, rule in rules.items():
            if key not in RULE_KEYS:
                raise UserError("segment {name}: unknown rule {key}; known: {known}", name=name,
                                key=key, known=", ".join(RULE_KEYS))
            if key in ("dpd", "amount"):
                if not (isinstance(rule, (list, tuple)) and len(rule) == 2) or any(
                        x is not None and not isinstance(x, (int, float)) for x in rule):
                    raise UserError("segment {name}: rule {key} is [min, max] (null: open)",
                                    name=name, key=key)
                rules[key] = [rule[0], rule[1]]
            elif not isinstance(rule, (list, tuple)) or \
                    any(isinstance(v, (list, dict)) for v in rule):
                raise UserError("segment {name}: rule {key} is a list of values", name=name,
                                key=key)
            else:
                rules[key] = list(rule)
        return cls(name, rules, Strategy.from_json(d.get("strategy") or {},
                                                   UserError("segment {name}", name=name)),
                   str(d.get("script") or ""))


# DPD buckets: soft collection early, harder and more insistent later. SMS rules by name
# (controller/sms.py): every bucket confirms promises, reminds the day before and says "we could
# not reach you"; the soft bucket also gets a reminder after the due date.
_SMS = ("promise_confirmation", "promise_reminder", "not_reached")
DEFAULT_SEGMENTS: tuple[Segment, ...] = (
    Segment("dpd 1-30", {"dpd": [1, 30]}, Strategy(priority=10, attempts_per_day=2,
                                                   sms_rules=("due_reminder", *_SMS))),
    Segment("dpd 31-60", {"dpd": [31, 60]}, Strategy(priority=20, sms_rules=_SMS)),
    Segment("dpd 61-90", {"dpd": [61, 90]}, Strategy(priority=30, sms_rules=_SMS)),
    Segment("dpd 90+", {"dpd": [91, None]}, Strategy(priority=40,
                                                     phone_order=("mobile", "work", "home"),
                                                     sms_rules=_SMS)),
    Segment("other", {}, Strategy(priority=0, sms_rules=_SMS)),
)


def assign(segments: tuple[Segment, ...] | list[Segment], acc: dict) -> Segment | None:
    """The first segment whose rules the account matches."""
    for seg in segments:
        if seg.matches(acc):
            return seg
    return None
