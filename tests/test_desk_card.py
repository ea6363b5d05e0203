"""The debtor's card reaches the desk before the debtor's voice: pushed, not polled.

The whole box at real time, dialing predictively (an answer is handed to whoever is free at that
moment, then put through at once: the case where a polled card came up to 250 ms late). The desk
is a real WebSocket client and a real WebRTC peer (aiortc, DTLS-SRTP on loopback), signed in as
a person would be. The box sends the card before it switches the call in the media plane; the
desk has the card before the first frame of the debtor's voice arrives.
"""
from __future__ import annotations

import array
import asyncio
import json
import re

import aiohttp
import pytest

from tests.deskbox import PASSWORD, desk_box
from tests.gsmsim import until
from web_admin.rtc_peer import BrowserPeer, ToneTrack


async def sign_in(http: aiohttp.ClientSession, base: str) -> str:
    """olga signs in; the desk's CSRF token."""
    async with http.get(base + "/login") as r:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text()).group(1)
    async with http.post(base + "/login", data={"username": "olga", "password": PASSWORD,
                                                "csrf": csrf}) as r:
        assert r.status == 200
    async with http.get(base + "/desk") as r:
        return re.search(r'data-csrf="([^"]+)"', await r.text()).group(1)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_the_card_is_on_the_desk_before_the_debtor_is_heard(tmp_path):
    async with desk_box(tmp_path, modules=4, operators=3, mode="predictive",
                        talk_mean_s=3.0) as (app, base):
        clock, olga_calls = app.clock, []
        sent: dict[str, float] = {}  # call -> when the box had sent her desk the card
        through: dict[str, float] = {}  # call -> first debtor frame delivered to her position
        shown: dict[str, float] = {}  # call -> when her desk received the card
        heard: list[float] = []  # when her headset received a frame of voice

        show = app.operators.show_card

        async def show_card(op, call_id):
            await show(op, call_id)
            sent.setdefault(call_id, clock.now())
            d = app.runner.dialer_of(call_id)
            olga_calls.append((call_id, d.last_decision.mode if d and d.last_decision else None))
        app.operators.show_card = show_card
        connect = app.media.connect

        def connect_spy(line, position):
            fut = connect(line, position)
            op = app.operators.human("olga")
            if op is not None and getattr(position, "name", position) == op.position:
                call_id = op.call_id
                fut.add_done_callback(lambda f: f.cancelled() or f.exception() or
                                      through.setdefault(call_id, f.result()))
            return fut
        app.media.connect = connect_spy

        peer = BrowserPeer(ToneTrack(1050.0))

        def on_frame(pcm: bytes) -> None:
            s = array.array("h")
            s.frombytes(pcm)
            if max(map(abs, s)) > 200:
                heard.append(clock.now())
        peer.on_frame = on_frame

        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            csrf = await sign_in(http, base)
            ws = await http.ws_connect(base + "/desk/ws")
            rtc: asyncio.Queue = asyncio.Queue()

            async def read() -> None:
                async for msg in ws:
                    data = json.loads(msg.data)
                    if "rtc" in data:
                        rtc.put_nowait(data["rtc"])
                    elif (data.get("call") or {}).get("call_id"):
                        shown.setdefault(data["call"]["call_id"], clock.now())

            async def beat() -> None:
                while True:
                    await asyncio.sleep(3.0)
                    await ws.send_str("hb")
            tasks = [asyncio.create_task(read()), asyncio.create_task(beat())]
            try:
                await ws.send_str(json.dumps({"rtc": "hello"}))
                offer = await asyncio.wait_for(rtc.get(), 10)
                assert offer["type"] == "offer"
                await ws.send_str(json.dumps({"rtc": "answer",
                                              "sdp": await peer.answer(offer)}))
                while not (await asyncio.wait_for(rtc.get(), 15)).get("up"):
                    pass
                assert not heard  # no call yet: silence from the box
                async with http.post(base + "/desk/ready", json={"ready": True},
                                     headers={"X-CSRF-Token": csrf}) as r:
                    assert r.status == 200
                await until(lambda: any(c in through for c, _ in olga_calls), timeout=60)
                await until(lambda: heard, timeout=5)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await ws.close()
                await peer.close()

        first, mode = olga_calls[0]
        assert mode == "predictive"  # handed over at the answer, put through at once
        for call_id in through:  # the box: card sent, then the call switched
            assert sent[call_id] <= through[call_id], (call_id, sent, through)
        # The desk: the card arrived before the first frame of the debtor's voice.
        assert shown[first] <= heard[0], (shown[first], heard[0])
        assert shown[first] <= through[first] + 0.02, (shown[first], through[first])
