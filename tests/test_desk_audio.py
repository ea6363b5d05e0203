"""The appliance's side of the desk's headset: audio down pauses at once, no call handed over."""
from __future__ import annotations

import asyncio

import pytest

from controller import users
from dialbox.appliance import Appliance, Settings
from tests.test_backend import _wait


@pytest.mark.slow
async def test_audio_lost_mid_call_pauses_the_operator_and_no_call_follows(tmp_path):
    app = Appliance(Settings(simulate=True, operators=0, data=tmp_path / "d", time_scale=25.0,
                             seed=21, compliance="none"))
    await app.start()
    try:
        users.add(app.store, "olga", "olga-password-1", role="operator")
        await app.desk_ready("olga", True)
        await _wait(lambda: (app.desk("olga")["call"] or {}).get("stage") == "bridged", 40)
        call_id = app.desk("olga")["call"]["call_id"]
        op = app.operators.human("olga")

        def mine() -> int:
            return app.store.db.execute("SELECT COUNT(*) FROM attempts WHERE operator=?",
                                        (op.position,)).fetchone()[0]
        await app.desk_audio_state("olga", False, "tab_closed")  # the tab closed mid-call
        before = mine()
        assert op not in app.operators.free() and op.pending == "desk_gone"
        await app.desk_hangup("olga", call_id)
        await _wait(lambda: op.state == "wrap_up", 20)
        await app.desk_disposition("olga", call_id, "rpc", {})  # wrap-up done
        await asyncio.sleep(3.0)  # 75 s of the box's time: calls would have come by now
        assert app.desk("olga")["call"] is None and op not in app.operators.free()
        assert mine() == before  # nothing was handed to her
        await app.desk_audio_state("olga", True, "")  # the page reconnected by itself
        await app.desk_ready("olga", True)
        await _wait(lambda: app.desk("olga")["call"] is not None, 40)  # calls come again
    finally:
        await app.stop()
