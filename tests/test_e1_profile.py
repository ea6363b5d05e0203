"""E1 profiles: the shipped YAML files, problems with key paths, drivers built from them."""
from __future__ import annotations

import asyncio

import pytest
import yaml

import hw_profiles
from cext import linestate_codes as codes
from firmware.clock import Clock
from firmware.e1.profile import check, parse_channels, spans_from_profile
from firmware.sim.e1_network import drive_calls
from firmware.sim.population import Population


def load(name: str) -> dict:
    return yaml.safe_load(hw_profiles.path(name).read_text())


@pytest.mark.parametrize("name, spans", [("e1-1span", 1), ("e1-4span", 4)])
def test_shipped_profiles_are_valid_and_build_drivers(name, spans):
    doc = load(name)
    assert check(doc) == []
    built = spans_from_profile(doc, simulate=False)
    assert [s.name for s in built] == [s["name"] for s in doc["spans"]]
    assert all(len(s.channel_names()) == 30 for s in built)


def test_profile_values_reach_the_span():
    [_, _, _, span] = spans_from_profile(load("e1-4span"), simulate=False)
    assert span.blocked == {31} and span.config.ring_timeout_s == 45
    assert span.config.t310 == 30 and span.config.t303 == 4
    [one] = spans_from_profile(load("e1-1span"), simulate=False)
    assert (one.config.link.t200, one.config.link.n200, one.config.link.k) == (1, 3, 7)


def base(**span) -> dict:
    s = {"name": "e1-0", "transport": "tcp", "address": "127.0.0.1:4016"}
    s.update(span)
    return {"driver": "e1", "spans": [s]}


@pytest.mark.parametrize("doc, path, words", [
    ({"driver": "gsm", "spans": [{"name": "a", "transport": "tcp", "address": "h:1"}]},
     ("driver",), "must be 'e1'"),
    ({"driver": "e1"}, ("spans",), "non-empty list"),
    (base(transport="isdn"), ("spans", 0, "transport"), "one of tcp"),
    (base(address="localhost"), ("spans", 0, "address"), "host:port"),
    (base(transport="dahdi"), ("spans", 0, "device"), "needs device"),
    (base(channels="1-16"), ("spans", 0, "channels"), "16 is the D-channel"),
    (base(channels=[1, "x"]), ("spans", 0, "channels"), "not a timeslot"),
    (base(blocked="3,3"), ("spans", 0, "blocked"), "listed twice"),
    (base(ring_timeout=5), ("spans", 0, "ring_timeout"), "did you mean 'ring_timeout_s'"),
    (base(timers={"t303": -1}), ("spans", 0, "timers", "t303"), "> 0"),
    (base(timers={"t2OO": 1}), ("spans", 0, "timers", "t2OO"), "unknown key"),
    (base(timers={"k": 200}), ("spans", 0, "timers", "k"), "at most 127"),
    (base(timers={"n200": 2.5}), ("spans", 0, "timers", "n200"), "whole number"),
    (base(switch="ni2"), ("spans", 0, "switch"), "euroisdn_e1"),
    (base(calling_number="+7 495 123"), ("spans", 0, "calling_number"), "official number"),
    (base(calling_number=74951234567), ("spans", 0, "calling_number"), "E.164"),
])
def test_problems_carry_the_key_path(doc, path, words):
    problems = check(doc)
    assert any(p == path and words in msg for p, msg in problems), problems


def test_all_problems_are_collected_and_duplicate_names_found():
    doc = {"driver": "e1", "spans": [
        {"name": "e1-0", "transport": "tcp", "address": "127.0.0.1:1"},
        {"name": "e1-0", "transport": "serial", "ring_timeout_s": 0}]}
    paths = {p for p, _ in check(doc)}
    assert {("spans", 1, "name"), ("spans", 1, "device"), ("spans", 1, "ring_timeout_s")} <= paths
    with pytest.raises(ValueError, match="spans.1.name"):
        spans_from_profile(doc, simulate=False)


def test_parse_channels_forms():
    assert parse_channels("1-3, 17") == (1, 2, 3, 17)
    assert parse_channels([5, "20-21"]) == (5, 20, 21)
    with pytest.raises(ValueError):
        parse_channels("")


async def test_simulated_four_span_profile_runs_calls_and_honours_blocking():
    clock = Clock(400)
    spans = spans_from_profile(load("e1-4span"), simulate=True, clock=clock,
                               population=lambda i: Population(seed=i, ring_mean_s=2,
                                                               talk_mean_s=5))
    dialled = []

    def note(span, r):
        if r.event == codes.EV_HW_DIALING:
            dialled.append((span.name, r.channel))

    try:
        results = await drive_calls(spans, 200, clock=clock, timeout_s=20000, on_event=note)
    finally:
        for span in spans:
            await span.stop()
    assert len(results) == 200
    assert {r.span for r in results} == {"e1-0", "e1-1", "e1-2", "e1-3"}
    assert ("e1-3", 29) not in dialled and ("e1-2", 29) in dialled  # timeslot 31 blocked on e1-3
    assert all(r.timeslot != 31 for r in spans[3].simulator.records)


async def test_unreachable_relay_keeps_the_span_out_of_service_and_retrying():
    [span] = spans_from_profile(base(address="127.0.0.1:9"), simulate=False, clock=Clock(100))
    reports = []
    await span.start(reports.append)
    await asyncio.sleep(0.1)  # several reconnect periods of 2 simulated seconds
    await span.stop()
    assert {r.event for r in reports} == {codes.EV_HW_OUT_OF_SERVICE}
    assert span.health(0)["link"] == "down"


async def test_dropped_tcp_connection_is_reconnected_by_the_span():
    clock = Clock(100)
    [span] = spans_from_profile(base(), simulate=True, clock=clock, sim_transport="tcp",
                                population=Population(seed=2))
    reports = []
    await span.start(reports.append)
    try:
        async def count(ev):
            return sum(r.event == ev for r in reports)
        for _ in range(500):
            if await count(codes.EV_HW_IN_SERVICE) == 30:
                break
            await asyncio.sleep(0.01)
        await span.simulator.fault_drop_connection()
        for _ in range(500):
            if await count(codes.EV_HW_IN_SERVICE) == 60:
                break
            await asyncio.sleep(0.01)
        assert await count(codes.EV_HW_OUT_OF_SERVICE) == 60
        assert await count(codes.EV_HW_IN_SERVICE) == 60
    finally:
        await span.stop()
