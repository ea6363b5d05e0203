"""Two campaigns at once on the simulated box: their own creditors, modes, laws and operators."""
from __future__ import annotations

import asyncio
from importlib.resources import files
from pathlib import Path

import pytest

from controller import campaigns
from controller.calllist import import_csv
from controller.store import Store
from dialbox.appliance import Appliance, Settings
from tests.test_e2e import _daytime_zone

STAFF = {"Банк-А": {"pos1", "pos2"}, "Банк-Б": {"pos3", "pos4"}}


def _lists(tmp_path: Path) -> dict[str, Path]:
    """The demo debtors split in two portfolios (one creditor each)."""
    lines = Path(str(files("controller").joinpath("data/demo-debtors.csv"))).read_text(
        encoding="utf-8").splitlines()
    out = {}
    for name, part in (("Банк-А", lines[1:100]), ("Банк-Б", lines[100:])):
        out[name] = tmp_path / f"{name}.csv"
        out[name].write_text("\n".join([lines[0], *part]) + "\n", encoding="utf-8")
    return out


def _attempts(app, name: str) -> list:
    return app.store.db.execute(
        "SELECT a.operator, a.created_at FROM attempts a JOIN campaigns c ON c.id=a.campaign_id "
        "WHERE c.name=? AND a.state != 'line_fault'", (name,)).fetchall()


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_two_campaigns_run_at_once_and_pausing_one_leaves_the_other_dialing(tmp_path):
    app = Appliance(Settings(simulate=True, operators=4, data=tmp_path / "d", time_scale=25.0,
                             seed=9, wrap_mean_s=3.0, demo=False))
    await app.start()
    try:
        assert app.store.campaigns() == []  # --no-demo: an empty box
        for (name, creditor, mode, law), path in zip(
                (("Банк-А", "А-Кредит", "progressive", "none"),
                 ("Банк-Б", "Б-Финанс", "predictive", "ru-230fz")), _lists(tmp_path).values()):
            cfg = campaigns.create(app.store, name, creditor=creditor, mode=mode,
                                   compliance=law, who="t", source="test")
            import_csv(app.store, cfg.id, path, report_dir=tmp_path / "reports")
            campaigns.update(app.store, name, who="t", source="test",
                             operators=sorted(STAFF[name]))
        # ru-230fz hours are the debtor's: put Б's debtors where it is a working-day daytime.
        app.store.db.execute("UPDATE accounts SET tz=? WHERE campaign_id=?",
                             (_daytime_zone(), app.store.campaign("Банк-Б")))
        for name in STAFF:
            campaigns.act(app.store, name, "start", who="t", source="test")
        await asyncio.sleep(10)
        for name, staff in STAFF.items():
            rows = _attempts(app, name)
            assert len(rows) >= 3, (name, len(rows))
            # Operators work only their own campaign's calls.
            assert {r["operator"] for r in rows if r["operator"]} <= staff, name
        modes = {d.campaign_name: d.mode for d in app.runner.dialers.values()}
        assert modes == {"Банк-А": "progressive", "Банк-Б": "predictive"}

        # Pause A from another process's connection, as `dialbox campaign pause` does.
        cli = Store(tmp_path / "d" / "dialbox.sqlite3")
        campaigns.act(cli, "Банк-А", "pause", who="t", source="cli")
        cli.close()
        await asyncio.sleep(3)  # more than one poll of the store
        paused_at = app.clock.wall()
        b_before = len(_attempts(app, "Банк-Б"))
        await asyncio.sleep(6)
        assert not [r for r in _attempts(app, "Банк-А") if r["created_at"] > paused_at]
        assert len(_attempts(app, "Банк-Б")) > b_before  # the other one dials on
    finally:
        await app.stop()
