"""A line editor for a VT100 terminal on a serial line (picocom, minicom, screen).

``feed(bytes)`` takes what the person typed and returns what to send back (the echo and the
redrawn line) plus the lines finished with Enter. Keys: printable text (UTF-8), Backspace,
Delete, Left/Right, Home/End (also Ctrl-A/Ctrl-E), Up/Down through the history, Ctrl-U clears,
Ctrl-C drops the line, Ctrl-L redraws, Enter (CR, LF or CR LF) submits.
"""
from __future__ import annotations

import codecs

CTRL_C = "\x03"
_SEQ = {"A": "up", "B": "down", "C": "right", "D": "left", "H": "home", "F": "end",
        "1~": "home", "7~": "home", "4~": "end", "8~": "end", "3~": "delete"}


class LineEditor:
    """One person's input line, prompt and history."""

    def __init__(self, prompt: str = "> ", *, history: int = 100) -> None:
        self.prompt = prompt
        self.hidden = False  # PINs and passwords: echoed as stars
        self.buf: list[str] = []
        self.pos = 0
        self.history: list[str] = []
        self.max_history = history
        self._hist_at: int | None = None
        self._draft: list[str] = []
        self._esc = ""  # an escape sequence being read
        self._last_cr = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def start(self, prompt: str | None = None, *, hidden: bool = False) -> bytes:
        """Begin a new line: returns the prompt to send."""
        if prompt is not None:
            self.prompt = prompt
        self.hidden = hidden
        self.buf, self.pos, self._hist_at = [], 0, None
        return self.prompt.encode()

    def feed(self, data: bytes) -> tuple[bytes, list[str]]:
        """What to echo, and the lines submitted (a line ``CTRL_C`` when one was dropped)."""
        out: list[str] = []
        done: list[str] = []
        for ch in self._decoder.decode(data):
            self._key(ch, out, done)
        return "".join(out).encode(), done

    def remember(self, line: str) -> None:
        if line.strip() and (not self.history or self.history[-1] != line):
            self.history.append(line)
            del self.history[:-self.max_history]

    # --- keys ---------------------------------------------------------------------------------
    def _key(self, ch: str, out: list[str], done: list[str]) -> None:
        if self._esc:
            self._escape(ch, out)
            return
        was_cr, self._last_cr = self._last_cr, ch == "\r"
        if ch == "\n" and was_cr:
            return  # CR LF is one Enter
        if ch in "\r\n":
            line = "".join(self.buf)
            out.append("\r\n")
            done.append(line)
            self.buf, self.pos, self._hist_at = [], 0, None
            return
        if ch == "\x1b":
            self._esc = "\x1b"
        elif ch in ("\x7f", "\x08"):
            if self.pos:
                del self.buf[self.pos - 1]
                self.pos -= 1
                self._redraw(out)
        elif ch == CTRL_C:
            out.append("^C\r\n")
            done.append(CTRL_C)
            self.buf, self.pos, self._hist_at = [], 0, None
        elif ch == "\x15":  # Ctrl-U
            self.buf, self.pos = [], 0
            self._redraw(out)
        elif ch == "\x01":
            self._move("home", out)
        elif ch == "\x05":
            self._move("end", out)
        elif ch == "\x0c":  # Ctrl-L
            out.append("\x1b[2J\x1b[H")
            self._redraw(out)
        elif ch >= " " and ch != "\x7f":
            self.buf.insert(self.pos, ch)
            self.pos += 1
            if self.pos == len(self.buf):
                out.append("*" if self.hidden else ch)
            else:
                self._redraw(out)

    def _escape(self, ch: str, out: list[str]) -> None:
        self._esc += ch
        seq = self._esc
        if seq in ("\x1b[", "\x1bO") or (seq.startswith("\x1b[") and ch.isdigit()):
            return
        self._esc = ""
        body = seq[2:] if len(seq) > 2 else ""
        key = _SEQ.get(body)
        if key is None or len(seq) < 3:
            return  # an unknown sequence is dropped whole, never typed in
        self._move(key, out)

    def _move(self, key: str, out: list[str]) -> None:
        if key == "left" and self.pos:
            self.pos -= 1
            out.append("\x1b[D")
        elif key == "right" and self.pos < len(self.buf):
            self.pos += 1
            out.append("\x1b[C")
        elif key == "home":
            self.pos = 0
            self._redraw(out)
        elif key == "end":
            self.pos = len(self.buf)
            self._redraw(out)
        elif key == "delete" and self.pos < len(self.buf):
            del self.buf[self.pos]
            self._redraw(out)
        elif key in ("up", "down") and not self.hidden and self.history:
            self._recall(-1 if key == "up" else 1)
            self._redraw(out)

    def _recall(self, step: int) -> None:
        if self._hist_at is None:
            if step > 0:
                return
            self._draft = list(self.buf)
            self._hist_at = len(self.history)
        at = self._hist_at + step
        if at < 0:
            return
        if at >= len(self.history):
            self._hist_at, self.buf = None, list(self._draft)
        else:
            self._hist_at, self.buf = at, list(self.history[at])
        self.pos = len(self.buf)

    def _redraw(self, out: list[str]) -> None:
        shown = "*" * len(self.buf) if self.hidden else "".join(self.buf)
        out.append("\r" + self.prompt + shown + "\x1b[K")
        back = len(self.buf) - self.pos
        if back:
            out.append(f"\x1b[{back}D")
