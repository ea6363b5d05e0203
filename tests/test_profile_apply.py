"""A hardware profile applied without restarting the other devices: two simulated modems, each
its own profile; a call on one goes on while the other's profile is applied, and a device with
a call up switches when its call ends."""
from __future__ import annotations

import pytest

from dialbox.appliance import Appliance, Settings
from firmware.lineapi import CallProgress, CallReleased, CallStage, LineError, Outcome
from tests.gsmsim import until

PROFILE = """name: {name}
driver: gsm
dialect: sim800
modules:
  - {{name: {line}, port: "sim://0"}}
limits: {{ring_timeout_s: {ring}, max_call_s: 3600}}
health_interval_s: 4
command_timeout_s: 3
simulate:
  bridge_delay_s: 0.1
  population: {{answer_prob: 1.0, busy_prob: 0, unreachable_prob: 0, rejected_prob: 0,
               invalid_prob: 0, ring_mean_s: 2, ring_sd_s: 0, no_answer_timeout_s: 30,
               talk_mean_s: 3000, talk_sd_s: 0}}
"""


async def _until(cond, timeout: float = 30.0) -> None:
    await until(cond, timeout)


@pytest.fixture
async def box(tmp_path):
    own = tmp_path / "d" / "profiles"
    own.mkdir(parents=True)
    for name, line in (("dev-a", "gsma"), ("dev-b", "gsmb")):
        (own / f"{name}.yaml").write_text(PROFILE.format(name=name, line=line, ring=40))
    app = Appliance(Settings(simulate=True, profiles=("dev-a", "dev-b"), operators=0,
                             data=tmp_path / "d", time_scale=10.0, seed=7, demo=False,
                             compliance="none"))
    await app.start()
    events: list = []
    app.lines.subscribe(events.append)
    await _until(lambda: {app.lines.state(n) for n in ("gsma", "gsmb")} == {"idle"})
    yield app, events
    await app.stop()


async def _talking(app, events, line: str, call_id: str) -> None:
    """A call on ``line`` answered and bridged (no operator page: the modem bridges it)."""
    await app.lines.dial(line, "+79161234567", call_id=call_id)
    await _until(lambda: any(isinstance(e, CallProgress) and e.call_id == call_id
                             and e.stage == CallStage.ANSWERED for e in events))
    await app.lines.bridge(call_id, "pos1")
    await _until(lambda: app.lines.state(line) == "bridged")


def _save(app, name: str, ring: int, line: str) -> None:
    assert app.profile_library().save(name, PROFILE.format(name=name, line=line, ring=ring)) == []


async def test_a_call_on_one_modem_goes_on_while_the_other_modems_profile_is_applied(box):
    app, events = box
    sim_b = next(s for s in app.sims if s.name == "gsmb")
    driver_a, driver_b = app.devices["dev-a"][0], app.devices["dev-b"][0]
    await _talking(app, events, "gsma", "a1")
    inits_b = sim_b.commands.count("ATE0")

    _save(app, "dev-b", 25, "gsmb")
    done = await app.apply_profile("dev-b")
    assert done == {"when": "now", "lines": ["gsmb"], "busy": []}
    new_b = app.devices["dev-b"][0]
    assert new_b is not driver_b and new_b.profile.ring_timeout_s == 25
    await _until(lambda: sim_b.commands.count("ATE0") > inits_b)  # B's modem initialised anew
    await _until(lambda: app.lines.state("gsmb") == "idle")
    assert app.lines.ring_timeout_s("gsmb") == 25
    # A never noticed: the same driver, the call still up and never released
    assert app.devices["dev-a"][0] is driver_a and app.lines.state("gsma") == "bridged"
    assert not [e for e in events if isinstance(e, CallReleased)]
    # B works on its new profile: a call there is answered too
    await _talking(app, events, "gsmb", "b1")
    await app.lines.hangup("b1")
    await _until(lambda: any(isinstance(e, CallReleased) and e.call_id == "b1" for e in events))

    # A's own profile while its call is up: it waits for the call, takes no new one meanwhile
    _save(app, "dev-a", 30, "gsma")
    done = await app.apply_profile("dev-a")
    assert done == {"when": "after_calls", "lines": ["gsma"], "busy": ["gsma"]}
    assert app.devices["dev-a"][0] is driver_a and app.lines.state("gsma") == "bridged"
    assert "gsma" not in app.lines.free_lines()
    (info,) = [li for li in app.lines.lines() if li.name == "gsma"]
    assert "switches to its new hardware profile when the call ends" in info.reason
    _save(app, "dev-a", 35, "gsma")  # saved again while waiting: the newer one is applied
    assert (await app.apply_profile("dev-a"))["when"] == "after_calls"
    assert len(app._applying) == 1 and app.devices["dev-a"][0] is driver_a
    await app.lines.hangup("a1")
    await _until(lambda: app.devices["dev-a"][0] is not driver_a)
    released = next(e for e in events if isinstance(e, CallReleased) and e.call_id == "a1")
    assert released.outcome == Outcome.ANSWERED and not released.line_fault
    await _until(lambda: app.lines.state("gsma") == "idle")
    assert app.lines.ring_timeout_s("gsma") == 35 and "gsma" in app.lines.free_lines()
    assert app.devices["dev-b"][0] is new_b  # B untouched this time


async def test_a_profile_that_adds_a_line_waits_for_the_next_start(box):
    app, events = box
    driver_b = app.devices["dev-b"][0]
    text = PROFILE.format(name="dev-b", line="gsmb", ring=40).replace(
        '  - {name: gsmb, port: "sim://0"}\n',
        '  - {name: gsmb, port: "sim://0"}\n  - {name: gsmc, port: "sim://1"}\n')
    assert app.profile_library().save("dev-b", text) == []
    assert (await app.apply_profile("dev-b"))["when"] == "next_start"
    assert app.devices["dev-b"][0] is driver_b and app.lines.state("gsmb") == "idle"
    assert [s.name for s in app.sims] == ["gsma", "gsmb"]  # no modem started for it now
    assert (await app.apply_profile("sim800"))["when"] == "not_running"
    with pytest.raises(LineError, match="adding or removing lines needs a restart"):
        await app.lines.replace_drivers([driver_b], [])


async def test_an_e1_span_takes_its_new_profile_while_a_modem_keeps_its_call(tmp_path):
    from hw_profiles import path as bundled
    own = tmp_path / "d" / "profiles"
    own.mkdir(parents=True)
    (own / "dev-a.yaml").write_text(PROFILE.format(name="dev-a", line="gsma", ring=40))
    app = Appliance(Settings(simulate=True, profiles=("dev-a", "e1-1span"), operators=0,
                             data=tmp_path / "d", time_scale=10.0, seed=7, demo=False,
                             compliance="none"))
    await app.start()
    try:
        events: list = []
        app.lines.subscribe(events.append)
        e1 = [n for d in app.devices["e1-1span"] for n in d.channel_names()]
        await _until(lambda: all(app.lines.state(n) == "idle" for n in ["gsma", *e1]))
        old_span = app.devices["e1-1span"][0]
        await _talking(app, events, "gsma", "a1")
        text = bundled("e1-1span").read_text().replace("ring_timeout_s: 60", "ring_timeout_s: 50")
        assert app.profile_library().save("e1-1span", text) == []
        assert (await app.apply_profile("e1-1span"))["when"] == "now"
        new_span = app.devices["e1-1span"][0]
        assert new_span is not old_span and app.e1_spans == [new_span]
        await _until(lambda: all(app.lines.state(n) == "idle" for n in e1))
        assert app.lines.ring_timeout_s(e1[0]) == 50
        assert app.lines.state("gsma") == "bridged"
        assert not [e for e in events if isinstance(e, CallReleased)]
    finally:
        await app.stop()


async def test_a_running_campaign_rings_a_line_as_long_as_its_newly_applied_profile_says(tmp_path):
    """The dialer read each line's ring time-out when the campaign started: a profile applied
    while it runs is what its next call on that line rings for (and the pacer's no-answer
    time-out follows the longest line)."""
    own = tmp_path / "d" / "profiles"
    own.mkdir(parents=True)
    short = PROFILE.replace("talk_mean_s: 3000", "talk_mean_s: 1")
    for name, line in (("dev-a", "gsma"), ("dev-b", "gsmb")):
        (own / f"{name}.yaml").write_text(short.format(name=name, line=line, ring=40))
    app = Appliance(Settings(simulate=True, profiles=("dev-a", "dev-b"), operators=2,
                             data=tmp_path / "d", time_scale=10.0, seed=7, wrap_mean_s=0.5,
                             compliance="none"))
    await app.start()
    try:
        rings: dict[str, float] = {}  # call id -> how long the dialer lets it ring

        def placed(ev) -> None:
            if isinstance(ev, CallProgress) and ev.line == "gsmb" and ev.call_id not in rings:
                dialer = app.runner.dialer_of(ev.call_id)
                out = dialer._out.get(ev.call_id) if dialer is not None else None
                if out is not None:
                    rings[ev.call_id] = out.ring_s
        app.runner.listeners.append(placed)
        await _until(lambda: rings, 60)  # the demo campaign dials gsmb
        (dialer,) = app.runner.dialers.values()
        assert set(rings.values()) == {40.0} and dialer.pacer.config.no_answer_timeout_s == 40
        assert app.profile_library().save("dev-b", short.format(name="dev-b", line="gsmb",
                                                                ring=25)) == []
        await app.apply_profile("dev-b")
        await _until(lambda: app.lines.ring_timeout_s("gsmb") == 25, 60)
        before = set(rings)
        await _until(lambda: set(rings) - before, 60)  # its next call
        assert {rings[c] for c in set(rings) - before} == {25.0}
        assert dialer.pacer.config.no_answer_timeout_s == 40  # gsma still rings 40 s
        # A line blocked while its profile is applied takes it when unblocked (no in-service
        # event then: the dialer reads the time-out again as it dials)

        def blocked() -> bool:  # only an idle line can be blocked: tried until it is
            if app.lines.state("gsmb") == "idle":
                app.lines.block("gsmb")
            return app.lines.state("gsmb") == "blocked"
        await _until(blocked, 60)
        assert app.profile_library().save("dev-b", short.format(name="dev-b", line="gsmb",
                                                                ring=30)) == []
        await app.apply_profile("dev-b")
        await _until(lambda: app.lines.ring_timeout_s("gsmb") == 30, 60)
        await _until(lambda: app.devices["dev-b"][0].in_service, 60)
        assert app.lines.state("gsmb") == "blocked"
        before = set(rings)
        app.lines.unblock("gsmb")
        await _until(lambda: set(rings) - before, 60)
        assert {rings[c] for c in set(rings) - before} == {30.0}
    finally:
        await app.stop()
