"""Hardware profiles: bundled ones load without the source tree; bad ones say FILE:LINE: what."""
from __future__ import annotations

import pytest

import hw_profiles
from dialbox.cli import main
from firmware import profiles
from firmware.errors import UserError
from firmware.yamlsrc import ConfigError


def test_default_profile_is_the_simulated_gateway():
    p = profiles.load(None)
    assert p.driver == "gsm" and len(p.modules) == 4
    assert all(m.port.startswith("sim://") for m in p.modules)


@pytest.mark.parametrize("name", [n for n in hw_profiles.names()])
def test_every_bundled_profile_is_valid(name, capsys):
    assert main(["profile", "check", name]) == 0


def test_missing_profile_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        profiles.load(str(tmp_path / "nope.yaml"))
    assert main(["profile", "check", str(tmp_path / "nope.yaml")]) == 1


def test_problems_are_reported_with_file_and_line(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text(
        "name: bad\n"            # 1
        "driver: gsm\n"          # 2
        "dialect: sim900\n"      # 3
        "modules:\n"             # 4
        "  - port: /dev/ttyUSB0\n"  # 5
        "  - port: /dev/ttyUSB0\n"  # 6
        "baud_rate: 9600\n"      # 7
        "limits:\n"              # 8
        "  max_call_s: -5\n",    # 9
        encoding="utf-8")
    assert main(["profile", "check", str(f)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert f"{f}:3: unknown dialect 'sim900'" in out[0] or any(
        line.startswith(f"{f}:3: unknown dialect 'sim900'") for line in out)
    assert any(line.startswith(f"{f}:6:") and "already used" in line for line in out)
    assert any(line.startswith(f"{f}:7:") and "did you mean 'baud'" in line for line in out)
    assert any(line.startswith(f"{f}:9:") and "positive" in line for line in out)
    assert "Traceback" not in "\n".join(out)


def test_broken_yaml_names_the_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("name: x\ndriver: gsm\nmodules: [\n  {port: a\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        profiles.load(str(f))
    assert str(err.value).startswith(f"{f}:")
    assert "not valid YAML" in str(err.value)


def test_not_a_mapping(tmp_path, capsys):
    f = tmp_path / "list.yaml"
    f.write_text("- a\n- b\n", encoding="utf-8")
    assert main(["profile", "check", str(f)]) == 1
    assert "must be a mapping" in capsys.readouterr().out


def test_the_lines_number_and_caller_id_are_checked(tmp_path, capsys):
    f = tmp_path / "hidden.yaml"
    f.write_text(
        "name: hidden\n"                                   # 1
        "driver: gsm\n"                                    # 2
        "dialect: sim800\n"                                # 3
        "modules:\n"                                       # 4
        "  - {port: /dev/ttyUSB0, number: '89161234567'}\n"  # 5
        "  - {port: /dev/ttyUSB1, number: '+79161234567'}\n"  # 6
        "init: ['AT+CLIP=1', 'AT+CLIR=1']\n",              # 7
        encoding="utf-8")
    assert main(["profile", "check", str(f)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith(f"{f}:5:") and "E.164" in line for line in out), out
    assert not any(line.startswith(f"{f}:6:") for line in out)
    assert any(line.startswith(f"{f}:7:") and "would hide the caller's number" in line
               for line in out), out
    f.write_text(f.read_text().replace("'89161234567'", "'+79161234560'")
                 .replace(", 'AT+CLIR=1'", ""), encoding="utf-8")
    assert main(["profile", "check", str(f)]) == 0
    assert [m.number for m in profiles.load(str(f)).modules] == ["+79161234560", "+79161234567"]


def test_line_audio_is_named_by_the_profile(tmp_path):
    ok = profiles.load("huawei-e173")
    assert ok.audio == "huawei-ddsetex" and ok.modules[0].audio_port.endswith("if01-port0")
    assert profiles.load("sim800").modules[0].seat == "pos1"
    assert profiles.load("sim-gsm-4").audio == "none", "the simulated gateway bridges itself"
    f = tmp_path / "audio.yaml"
    f.write_text(
        "name: audio\n"                          # 1
        "driver: gsm\n"                          # 2
        "dialect: huawei\n"                      # 3
        "audio: sim7600-cpcmreg\n"               # 4
        "modules:\n"                             # 5
        "  - port: /dev/ttyUSB2\n"               # 6
        "  - {port: /dev/ttyUSB5, seat: pos2}\n"  # 7
        "  - {port: sim://3}\n")                 # 8: the simulator brings its audio port
    with pytest.raises(ConfigError) as err:
        profiles.load(str(f))
    text = str(err.value)
    assert "audio.yaml:4" in text and "carries voice as huawei-ddsetex" in text
    assert "audio.yaml:6" in text and "needs the module's 'audio_port'" in text
    assert "audio.yaml:7" in text and "seat is used only with audio analog-seat" in text
    assert "audio.yaml:8" not in text
    f.write_text("name: a\ndriver: gsm\ndialect: sim800\naudio: analog-seat\n"
                 "modules:\n  - port: /dev/ttyUSB0\n")
    with pytest.raises(ConfigError, match="needs the module's 'seat'"):
        profiles.load(str(f))


def test_the_balance_ussd_is_chosen_by_the_sims_operator(tmp_path):
    from firmware.yamlsrc import Source
    text = ("name: t\ndriver: gsm\nmodules: [{port: /dev/ttyUSB0}]\n"
            'ussd_balance:\n  25001: "*100#"\n  "250020": "*111#"\n  Beeline: "*102#"\n'
            '  default: "#100#"\n')
    f = tmp_path / "t.yaml"
    f.write_text(text)
    p = profiles.load(str(f))
    assert p.balance_code("250011234567890", "MTS RUS") == "*100#"  # YAML's int key read as text
    assert p.balance_code("250020123456789", "MegaFon") == "*111#"  # a 3-digit MNC first
    assert p.balance_code("250991234567890", "Beeline") == "*102#"  # by the network's name
    assert p.balance_code(None, "BEELINE") == "*102#"
    assert p.balance_code("250201234567890", "Tele2") == "#100#"  # anyone else: the default
    one = profiles.Profile(name="x", driver="gsm", source="-", ussd_balance="*100#")
    assert one.balance_code("250991234567890", "Beeline") == "*100#"
    assert profiles.Profile(name="x", driver="gsm", source="-").balance_code("2500", "x") is None
    assert profiles.check(Source(text.replace('"*102#"', "'*102'").replace("25001:", "2501:")
                                 .replace('"#100#"', "[1]"), "t.yaml")) == [
        profiles.Problem("t.yaml", 5, "operator 2501: write its MCC and MNC (5 or 6 digits, e.g. "
                         "25001), its name as the network shows it (e.g. MegaFon), or default"),
        profiles.Problem("t.yaml", 7, "balance code '*102' is not a USSD request like \"*100#\" "
                         "(quote it: a bare * starts a YAML alias)"),
        profiles.Problem("t.yaml", 8, "balance code [1] is not a USSD request like \"*100#\" "
                         "(quote it: a bare * starts a YAML alias)")]
    assert profiles.check(Source(text.replace('"*100#"', '"100"'), "t.yaml"))[0].line == 5
    assert "'ussd_balance' must be a USSD code or a mapping of operators to codes, got a whole " \
        "number 7" in str(profiles.check(Source(
        "name: t\ndriver: gsm\nmodules: [{port: /dev/ttyUSB0}]\nussd_balance: 7\n", "t.yaml")))
