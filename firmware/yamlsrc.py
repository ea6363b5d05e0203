"""YAML with line numbers, and problems reported as ``FILE:LINE: message``."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

from firmware.errors import N_, Msg, UserError

Path_ = tuple  # a path of keys and indexes into the document


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(UserError):
    """One or more problems in a configuration file, each with its line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Source:
    """A parsed YAML document that remembers the line of every key and item."""

    def __init__(self, text: str, filename: str) -> None:
        self.filename = filename
        self.lines: dict[Path_, int] = {}
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text) if node is not None else None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            raise ConfigError([Problem(filename, line, Msg("not valid YAML: {problem}",
                                                           problem=_explained(exc)))]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([Problem(filename, 1, Msg("not valid YAML: {problem}",
                                                        problem=str(exc)))]) from None
        if node is not None:
            self._index(node, ())

    @classmethod
    def read(cls, path: str | Path) -> "Source":
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError("{file}: file not found", file=p) from None
        except IsADirectoryError:
            raise UserError("{file}: is a directory, expected a YAML file", file=p) from None
        except UnicodeDecodeError as exc:
            raise UserError("{file}: not UTF-8 text (byte {n})", file=p, n=exc.start) from None
        except OSError as exc:
            raise UserError("{file}: cannot read: {why}", file=p, why=exc.strerror) from None
        return cls(text, str(p))

    def _index(self, node: yaml.Node, path: Path_) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                k = key.value
                self.lines[path + (k,)] = key.start_mark.line + 1
                self._index_child(value, path + (k,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, path + (i,))

    def _index_child(self, node: yaml.Node, path: Path_) -> None:
        line = self.lines[path]
        self._index(node, path)
        self.lines[path] = line  # a key's own line is where a person looks

    def line(self, path: Path_) -> int:
        """Line of ``path``, or of its nearest ancestor that is in the file."""
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def problem(self, path: Path_, message: str) -> Problem:
        return Problem(self.filename, self.line(path), message)


# What the parser's most common complaints mean for a person typing YAML (the rest as it says).
_PARSER_WORDS = (
    ("mapping values are not allowed", N_("a colon where a value goes (quote a value that "
                                          "contains ': ')")),
    ("found character '\\t'", N_("a tab: indent with spaces")),
    ("expected <block end>", N_("this line's indentation does not match the lines above")),
    ("expected ',' or ", N_("a list or mapping in brackets is not closed")),
    ("found unexpected end of stream", N_("a quote is not closed")),
    ("while scanning an alias", N_("a value that starts with * is read as a YAML alias: put it "
                                   "in quotes, e.g. \"*100#\"")),
    ("found undefined alias", N_("a value that starts with * is read as a YAML alias: put it "
                                 "in quotes, e.g. \"*100#\"")),
)


def _explained(exc: yaml.MarkedYAMLError) -> str:
    said = f"{exc.context or ''} {exc.problem or ''}"
    for words, meaning in _PARSER_WORDS:
        if words in said:
            return Msg(meaning)
    return str(exc.problem)


def suggest(word: str, choices) -> str:
    """`` (did you mean 'x'?)`` when a close match exists (a Msg: pages translate it)."""
    match = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return Msg(" (did you mean '{match}'?)", match=match[0]) if match else ""
