"""The appliance config: FILE:LINE problems, flags over the file, atomic write-back; boot skips a
bad profile and reports it."""
from __future__ import annotations

import argparse
import html
import json
import os
import re
from pathlib import Path

import pytest

from dialbox import config
from dialbox.cli import build_parser
from firmware.yamlsrc import ConfigError
from tests.runbox import admin_pages, cli, free_port, running
from web_admin.supervisor import box_words

GOOD = """\
# the shop's box
data: /var/lib/dialbox
listen:
  - 127.0.0.1:8080
  - "[::1]:8080"
profiles:
  - sim-gsm-4
  - file: e1-1span
    enabled: false
console: /dev/ttyS0
timezone: Europe/Moscow

# backups at night
backup:
  at: "03:30"
  keep: 5
metrics:
  allow: [10.0.0.0/8]
  token: 0123456789abcdef0123
"""


def test_a_good_config_checks_clean_and_loads(tmp_path, capsys):
    f = tmp_path / "dialbox.yaml"
    f.write_text(GOOD, encoding="utf-8")
    assert cli(["config", "check", str(f)]) == 0
    assert "ok" in capsys.readouterr().err
    cfg = config.load(f)
    assert cfg.data == Path("/var/lib/dialbox")
    assert cfg.listen == ["127.0.0.1:8080", "[::1]:8080"]
    assert cfg.profiles == ["sim-gsm-4"] and cfg.disabled_profiles == ["e1-1span"]
    assert cfg.console.device == "/dev/ttyS0" and cfg.console.baud == 115200
    assert cfg.timezone == "Europe/Moscow" and cfg.backup_at == "03:30" and cfg.backup_keep == 5
    assert cfg.metrics_allow == ["10.0.0.0/8"]


def test_every_problem_is_reported_with_file_and_line(tmp_path, capsys):
    prof = tmp_path / "modem.yaml"
    prof.write_text("name: m\ndriver: gsm\nmodules:\n  - port: /dev/ttyUSB0\nbaud_rate: 9600\n",
                    encoding="utf-8")
    f = tmp_path / "dialbox.yaml"
    f.write_text(
        "data: /srv/d\n"                 # 1
        "listen: [localhost]\n"          # 2
        "profiles:\n"                    # 3
        "  - modem.yaml\n"               # 4
        "timezone: Europe/Moskow\n"      # 5
        "backup:\n"                      # 6
        "  at: '3 am'\n"                 # 7
        "  keeep: 3\n"                   # 8
        "consle: /dev/ttyS0\n"           # 9
        "metrics:\n"                     # 10
        "  allow: [10.0.0.0/33]\n",      # 11
        encoding="utf-8")
    assert cli(["config", "check", str(f)]) == 1
    out = capsys.readouterr().out.splitlines()
    text = "\n".join(out)

    def has(line: int, *words: str) -> bool:
        return any(x.startswith(f"{f}:{line}:") and all(w in x for w in words) for x in out)
    assert has(2, "HOST:PORT"), text
    assert has(5, "unknown time zone"), text
    assert has(7, "HH:MM"), text
    assert has(8, "did you mean 'keep'"), text
    assert has(9, "did you mean 'console'"), text
    assert has(11, "not an address"), text
    # the enabled profile's own problem, with its own file and line
    assert any(x.startswith(f"{prof}:5:") and "did you mean 'baud'" in x for x in out), text
    with pytest.raises(ConfigError) as err:
        config.load(f)
    assert len(err.value.problems) >= 6  # all of them, not only the first


def test_https_settings_are_checked_with_file_and_line(tmp_path, capsys):
    (tmp_path / "shop.key").write_text("-----BEGIN PRIVATE KEY-----\n", encoding="utf-8")
    f = tmp_path / "dialbox.yaml"
    f.write_text(
        "listen: 0.0.0.0:8080\n"        # 1
        "https:\n"                      # 2
        "  listen: box.lan\n"           # 3
        "  cert: missing.crt\n"         # 4
        "  kye: shop.key\n",            # 5
        encoding="utf-8")
    assert cli(["config", "check", str(f)]) == 1
    out = "\n".join(capsys.readouterr().out.splitlines())
    for line, words in ((3, "HOST:PORT"), (4, "'cert' needs 'key'"), (4, "not found"),
                        (5, "did you mean 'key'")):
        assert re.search(rf"^{re.escape(str(f))}:{line}:.*{re.escape(words)}", out, re.M), out
    f.write_text("https:\n  listen: 192.168.1.10:8443\n  key: shop.key\n  cert: null\n",
                 encoding="utf-8")
    assert cli(["config", "check", str(f)]) == 1
    assert f"{f}:3: 'key' needs 'cert'" in capsys.readouterr().out
    f.write_text("https:\n  listen: 192.168.1.10:8443\n", encoding="utf-8")
    cfg = config.load(f)
    assert cfg.https_listen == "192.168.1.10:8443" and cfg.https_cert is None


def test_broken_yaml_names_the_line(tmp_path):
    f = tmp_path / "dialbox.yaml"
    f.write_text("data: /x\nlisten: [\n", encoding="utf-8")
    assert cli(["config", "check", str(f)]) == 1
    with pytest.raises(ConfigError, match=rf"^{f}:\d+: not valid YAML"):
        config.load(f)


def _run_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_flags_override_the_file_and_the_environment_names_it(tmp_path, monkeypatch):
    from dialbox.cmd_run import merged_config
    f = tmp_path / "dialbox.yaml"
    f.write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv("DIALBOX_CONFIG", str(f))
    cfg = merged_config(_run_args())
    assert cfg.source == str(f) and cfg.profiles == ["sim-gsm-4"]
    cfg = merged_config(_run_args("--data", str(tmp_path / "d"), "--http", "127.0.0.1:9999",
                                  "--profile", "sim800", "--console", "/dev/pts/9"))
    assert cfg.data == tmp_path / "d" and cfg.listen == ["127.0.0.1:9999"]
    assert cfg.profiles == ["sim800"] and cfg.console.device == "/dev/pts/9"
    assert cfg.timezone == "Europe/Moscow"  # what no flag names stays from the file
    monkeypatch.delenv("DIALBOX_CONFIG")
    cfg = merged_config(_run_args())
    assert cfg.source is None and cfg.listen == ["127.0.0.1:8080"]


def test_profile_paths_are_relative_to_the_config(tmp_path):
    sub = tmp_path / "etc"
    sub.mkdir()
    (sub / "dialbox.yaml").write_text("profiles: [gw/modem.yaml, sim800]\ndata: state\n",
                                      encoding="utf-8")
    cfg = config.load(sub / "dialbox.yaml")
    assert cfg.profiles == [str(sub / "gw/modem.yaml"), "sim800"]
    assert cfg.data == sub / "state"


def test_write_back_is_atomic_keeps_comments_and_the_previous_version(tmp_path):
    f = tmp_path / "dialbox.yaml"
    f.write_text(GOOD, encoding="utf-8")
    os.chmod(f, 0o600)
    prev = config.update(f, {"network": {"interface": "eth0", "address": "192.168.7.2/24",
                                         "gateway": "192.168.7.1"},
                             "backup": {"at": "04:00", "keep": 9}})
    assert prev.read_text(encoding="utf-8") == GOOD
    text = f.read_text(encoding="utf-8")
    assert "# the shop's box" in text and "# backups at night" in text
    cfg = config.load(f)
    assert cfg.network["address"] == "192.168.7.2/24"
    assert cfg.backup_at == "04:00" and cfg.backup_keep == 9
    assert cfg.timezone == "Europe/Moscow" and cfg.metrics_allow == ["10.0.0.0/8"]
    assert (f.stat().st_mode & 0o777) == 0o600
    assert not list(tmp_path.glob(".dialbox.yaml.tmp*"))
    # a change the next boot would refuse is never written
    with pytest.raises(ConfigError, match="not an address with a prefix"):
        config.update(f, {"network": {"address": "999.1.1.1"}})
    assert config.load(f).network["address"] == "192.168.7.2/24"


async def test_boot_skips_a_bad_profile_reports_it_and_starts_the_rest(tmp_path, monkeypatch):
    """The boot report and the supervisor's restarts reach the dashboard in the page's language,
    never with a server path: a bad profile, the clock unsynchronised, a task that keeps dying
    with a path in its error. The console and the log keep the English text, paths in full."""
    from dialbox import clocksync
    from dialbox.appliance import Settings
    from dialbox.clocksync import ClockState
    from tests.gsmsim import until
    from tests.test_i18n import russian_only
    reads = []

    def kernel() -> ClockState:  # unsynchronised; from the third read on, adjtimex breaks
        reads.append(1)
        if len(reads) >= 3:
            raise OSError(f"{tmp_path}/adjtimex: the kernel said no")
        return ClockState(False, 5, 16000.0, 16000.0)
    monkeypatch.setattr(clocksync, "READER", kernel)
    bad = tmp_path / "broken-gw.yaml"
    bad.write_text("name: gw\ndriver: gsm\ndialect: sim900\nmodules:\n  - port: sim://0\n",
                   encoding="utf-8")
    f = tmp_path / "dialbox.yaml"
    f.write_text(f"data: data\nlisten: [127.0.0.1:{free_port()}]\nsimulate: true\n"
                 "profiles:\n  - sim-gsm-4\n  - broken-gw.yaml\n"
                 "clock:\n  require_sync: true\n  check_interval_s: 5\n", encoding="utf-8")
    cfg = config.load(f)
    settings = Settings(simulate=True, profiles=tuple(cfg.profiles), data=cfg.data,
                        operators=0, compliance="none", time_scale=20)
    said: list[str] = []
    async with running(cfg, settings, announce=lambda *a, **k: said.append(a[0])) as (app, _):
        await until(lambda: any(t["name"] == "clock check" and t["failures"]
                                for t in app.runtime.supervisor.snapshot()), timeout=20)
        ru, en, api = await admin_pages(app, "?lang=ru", "?lang=en", "api/status")
        fed = json.dumps(box_words("ru", app.status()["box"]), ensure_ascii=False)
    box_ru, box_en = (html.unescape(p.split('id="box-alerts">')[1].split("</details>")[0])
                      for p in (ru, en))
    # Russian: every word of the report and of the restarted task in Russian, no path at all
    words = re.sub(r"<[^>]*>", " ", box_ru)  # what the page says, not its markup
    assert not russian_only(words, ("dialbox/", "firmware/", "web_admin/templates/_box.html"))
    assert "broken-gw.yaml:3:" in box_ru and "пропущен" in box_ru
    assert "<b>профиль broken-gw.yaml</b>" in box_ru and "Не запустилось при загрузке" in box_ru
    assert "<b>проверка часов</b>" in box_ru and "непредвиденная ошибка (OSError)" in box_ru
    assert "<b>часы</b>: НЕ синхронизированы" in box_ru and "база данных</b>: открыта," in box_ru
    # English: the same report in English, still without a path or the exception's own words
    assert "<b>profile broken-gw.yaml</b>: broken-gw.yaml:3: unknown dialect 'sim900'" in box_en
    assert "<b>clock check</b>" in box_en and "unexpected error (OSError)" in box_en
    assert "<b>store</b>: open, " in box_en and "the kernel said no" not in box_en
    assert "проверка часов" in fed and "непредвиденная ошибка (OSError)" in fed  # the live feed
    box = json.loads(api)["box"]  # the API: English, the same words as the English page
    assert box["boot_failed"][0]["what"] == "profile broken-gw.yaml"
    assert box["tasks_failing"][0]["last_reason"].startswith("unexpected error (OSError)")
    for page in (ru, en, fed, api):
        assert str(tmp_path) not in page and "/site-packages/" not in page
    assert 'id="boot-failed"' in ru
    assert len(app.lines.lines()) == 4  # the good profile's four modules
    failed = app.runtime.boot.failed
    assert [i.what for i in failed] == [f"profile {bad}", "clock"]
    assert f"{bad}:3: unknown dialect 'sim900'" in failed[0].detail
    text = "\n".join(app.runtime.boot.text())  # the console's 'show boot': paths in full
    assert "FAILED profile" in text and "ok     store: open, " in text and "web admin" in text
    assert f"{bad}:3: unknown dialect" in text
    assert any("2 part(s) failed" in s for s in said)


async def test_a_second_box_on_the_same_data_directory_is_refused(tmp_path):
    from dialbox.boot import DataLock
    from firmware.errors import UserError
    first = DataLock(tmp_path)
    first.acquire()
    try:
        assert DataLock.held(tmp_path)
        with pytest.raises(UserError, match="another dialbox is running"):
            DataLock(tmp_path).acquire()
    finally:
        first.release()
    assert not DataLock.held(tmp_path)


def test_the_shipped_example_config_is_valid(capsys):
    from pathlib import Path
    example = Path(__file__).parent.parent / "packaging" / "dialbox.yaml"
    assert cli(["config", "check", str(example)]) == 0, capsys.readouterr().out
    cfg = config.load(example)
    assert cfg.profiles == ["gw8-sim800"] and cfg.disabled_profiles == ["e1-1span"]
    assert cfg.console.device == "/dev/ttyS0" and cfg.require_clock_sync is True
