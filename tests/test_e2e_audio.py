"""The whole box at real time on simulated lines that carry audio: GSM modules of every audio
dialect and E1 B-channels. Every connected call's recording holds this debtor's voice on the
debtor channel and this operator's on the operator channel, in step; the debtor heard his
operator; no call hears another's; an audio port that vanishes is a line fault of its call only.
"""
from __future__ import annotations

import asyncio

import pytest

from controller import recordings
from dialbox.appliance import Appliance, Settings
from firmware.sim.voice import FRAME_S, alignment, has_signal, key_edges
from tests.gsmsim import until
from tests.media_signals import decode_stereo, need_ffmpeg

RATE = 8000
POPULATION = dict(answer_prob=1.0, busy_prob=0.0, unreachable_prob=0.0, rejected_prob=0.0,
                  invalid_prob=0.0, ring_mean_s=0.6, ring_sd_s=0.0, talk_mean_s=3.5,
                  talk_sd_s=0.5, no_answer_timeout_s=20.0)
GSM = {"huawei": ("huawei-ddsetex", "hw0"), "sim7600": ("sim7600-cpcmreg", "s76"),
       "ec25": ("ec25-qpcmv", "ec0")}
LINES = {"hw0", "s76", "ec0", "e1-0/1", "e1-0/2"}


def _profiles(tmp_path) -> tuple[str, ...]:
    names = []
    for i, (dialect, (method, line)) in enumerate(GSM.items()):
        f = tmp_path / f"{dialect}.yaml"
        f.write_text(f"name: sim-{dialect}\ndriver: gsm\ndialect: {dialect}\naudio: {method}\n"
                     f"modules:\n  - {{name: {line}, port: 'sim://{i}'}}\n"
                     "health_interval_s: 4\ncommand_timeout_s: 3\n"
                     f"simulate:\n  population: {POPULATION}\n", encoding="utf-8")
        names.append(str(f))
    e1 = tmp_path / "e1.yaml"
    e1.write_text("name: sim-e1\ndriver: e1\nspans:\n  - name: e1-0\n    transport: tcp\n"
                  "    address: 127.0.0.1:4016\n    channels: 1-2\n", encoding="utf-8")
    return (*names, str(e1))


@pytest.fixture
async def box(tmp_path, monkeypatch):
    need_ffmpeg()
    # Every simulated debtor answers and talks briefly (the E1 network takes the default).
    monkeypatch.setattr(Appliance, "_default_population", lambda self: dict(POPULATION))
    app = Appliance(Settings(simulate=True, profiles=_profiles(tmp_path), operators=5,
                             data=tmp_path / "data", time_scale=1.0, seed=3, wrap_mean_s=0.5,
                             compliance="none"))
    await app.start()
    yield app
    await app.stop()


def _windows(samples: list[int], every: int = 7) -> list[list[int]]:
    """20 ms windows, every 7th (prime to the 25-frame syllable: all its phases are seen)."""
    n = int(RATE * FRAME_S)
    return [samples[i:i + n] for i in range(0, len(samples) - n, n * every)]


def _presence(windows, signal) -> float:
    voiced = [w for w in windows if sum(x * x for x in w) > len(w) * 100 ** 2]
    return sum(has_signal(w, RATE, signal) for w in voiced) / max(1, len(voiced))


def _debtors(app) -> dict[tuple[str, str], object]:
    """(line, number digits) -> the simulated debtor's voice of that call."""
    out = {}
    for sim in app.sims:
        for rec in sim.records:
            if rec.voice is not None:
                out[(sim.name, rec.number.lstrip("+"))] = rec.voice
    for span in app.e1_spans:
        for rec in span.simulator.records:
            if rec.voice is not None:
                out[(f"{span.name}/{rec.timeslot}", rec.number.lstrip("+"))] = rec.voice
    return out


def _done_calls(app) -> list:
    return app.store.db.execute(
        "SELECT a.call_id, a.line, a.number, a.talk_s, r.operator, r.duration_s, r.state "
        "FROM attempts a JOIN recordings r ON r.call_id = a.call_id "
        "WHERE a.state='done' AND a.outcome='answered' AND r.state='done' ORDER BY a.id"
    ).fetchall()


@pytest.mark.slow
async def test_every_conversation_reaches_its_operator_and_its_recording(box):
    app = box
    # Each kind of line has finished and recorded at least one conversation.
    await until(lambda: LINES <= {row["line"] for row in _done_calls(app)}, timeout=40)
    rows = _done_calls(app)
    debtors = _debtors(app)
    operators = app.operator_voices
    everyone = [v.signal for v in debtors.values()] + [o.signal for o in operators.values()]
    assert len(set(everyone)) == len(everyone), "every speaker has a signal of his own"
    for row in rows:
        call = f"{row['line']} call {row['call_id']}"
        debtor = debtors[(row["line"], row["number"].lstrip("+"))]
        op = operators[row["operator"]]
        # The recording lasts the attempt's talk time.
        assert abs(row["duration_s"] - row["talk_s"]) <= 0.5, (call, dict(row))
        [info] = recordings.listing(app.store, app.settings.data, row["call_id"])
        left, right = decode_stereo(info["path"])
        wl, wr = _windows(left), _windows(right)
        # This debtor on the debtor channel, this operator on the operator channel, nobody else.
        assert _presence(wl, debtor.signal) > 0.6, call  # through Opus: a little is lost
        assert _presence(wr, op.signal) > 0.6, call
        # Nobody else on either channel, not even the call's other party: no other call's
        # voice, and no bleed between the two channels.
        for other in everyone:
            if other != debtor.signal:
                assert _presence(wl, other) == 0, (call, "debtor channel", other)
            if other != op.signal:
                assert _presence(wr, other) == 0, (call, "operator channel", other)
        # Both spoke on one clock grid: their syllables fall together in the recording within
        # the 60 ms; a GSM line whose buffer grew with its port's jitter holds that many
        # more frames above the position's, and the recording shows them.
        gap = alignment(key_edges(left, RATE, debtor.signal), key_edges(right, RATE, op.signal))
        line = app.media.legs[row["line"]].jitter
        deepest = line.max_prefill if line.grown else line.prefill
        extra = max(0, deepest - op.leg.jitter.prefill)
        assert gap is not None and gap <= 0.060 + extra * FRAME_S, (call, gap, extra)
        # The debtor heard his operator, the operator his debtor; nobody else.
        assert debtor.ear.presence(op.signal) > 0.6, call
        assert op.ears[row["call_id"]].presence(debtor.signal) > 0.6, call
        for other in everyone:
            if other not in (op.signal, debtor.signal):
                assert debtor.ear.presence(other) == 0, (call, other)
                assert op.ears[row["call_id"]].presence(other) == 0, (call, other)


@pytest.mark.slow
async def test_an_audio_port_that_vanishes_is_a_line_fault_of_that_call_only(box):
    app = box
    huawei = next(s for s in app.sims if s.name == "hw0")
    # Wait for a conversation on the Huawei module, then pull its audio interface.
    await until(lambda: huawei._voice is not None and huawei._voice.sent > 25, timeout=30)
    number = huawei._call.number
    others_before = len(_done_calls(app))
    huawei.inject("audio_vanish")
    # Closed at once with our fault as the reason: a line fault while it rang, or (the law
    # counts a conversation cut by our line) an answered call whose reason names the port.
    await until(lambda: app.store.db.execute(
        "SELECT 1 FROM attempts WHERE line='hw0' AND number=? AND state != 'dialing'",
        (number,)).fetchone() is not None, timeout=10)
    row = app.store.db.execute("SELECT outcome, reason FROM attempts WHERE line='hw0' "
                               "AND number=?", (number,)).fetchone()
    assert row["outcome"] != "answered" or "audio port" in (row["reason"] or "")
    assert "audio port" in (row["reason"] or "")
    # The line is out of service with the reason; the other lines keep talking and recording.
    await until(lambda: not next(ln for ln in app.lines.lines() if ln.name == "hw0")
                .in_service, timeout=10)
    later = lambda: [r for r in _done_calls(app)[others_before:] if r["line"] != "hw0"]  # noqa
    await until(lambda: len(later()) >= 3, timeout=30)
    assert all(r["line"] != "hw0" or r["number"] == number
               for r in _done_calls(app)[others_before:])  # nothing more on the broken line
