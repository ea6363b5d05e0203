"""What each family of GSM modules says and wants: data, not code."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    vendor: str
    init: tuple[str, ...]  # after ATE0 / AT+CMEE=1
    hangup: str
    call_progress: str  # clcc | huawei | dsci | final
    iccid: str  # command that reads the ICCID
    boot_urcs: tuple[str, ...]  # a line starting with one of these mid-work means a reboot
    noise_urcs: tuple[str, ...] = ()  # periodic reports that are not events
    ceer: bool = True  # AT+CEER gives the release cause after a failed call
    voice: str = "none"  # how the module carries a call's audio (one of VOICE_METHODS)
    # Dial-string modifier that shows our number for this call (27.007 6.2: "i" suppresses
    # CLIR); every call carries it, whatever the SIM's subscription says.
    show_number: str = "i"
    # What the module reports, unasked, when its SIM goes away (SIM800 and Quectel with SIM
    # detection on: +CPIN: NOT READY; SIM7600: +SIMCARD: NOT AVAILABLE; Huawei: ^SIMST: 255).
    # It comes seconds after the call it cut has ended, so the driver also asks AT+CPIN?.
    sim_removed_urc: str = "+CPIN: NOT READY"


# How a module's call audio reaches the box: on a second (USB) serial port after a vendor
# command, on analog pins wired to one operator seat, or not through the box at all (a gateway
# with its own voice bridge).
VOICE_METHODS = ("huawei-ddsetex", "sim7600-cpcmreg", "ec25-qpcmv", "analog-seat", "none")
SERIAL_VOICE = ("huawei-ddsetex", "sim7600-cpcmreg", "ec25-qpcmv")


DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (
        Dialect("generic", "generic V.250 / 27.007 module", ("AT+CLIP=1", "AT+COLP=1"),
                "ATH", "final", "AT+CCID", ("RDY",), ()),
        Dialect("sim800", "SIMCom SIM800", ("AT+CLIP=1", "AT+CLCC=1"), "ATH", "clcc",
                "AT+CCID", ("RDY", "Call Ready", "SMS Ready", "+CFUN: 1"), (),
                voice="analog-seat"),
        Dialect("sim7600", "SIMCom SIM7600", ("AT+CLIP=1", "AT+CLCC=1"), "AT+CHUP", "clcc",
                "AT+CICCID", ("RDY", "PB DONE", "+CPIN: READY"), (), voice="sim7600-cpcmreg",
                sim_removed_urc="+SIMCARD: NOT AVAILABLE"),
        Dialect("ec25", "Quectel EC25", ("AT+CLIP=1", "AT+CLCC=1",
                                         'AT+QURCCFG="urcport","usbat"'), "ATH", "clcc",
                "AT+QCCID", ("RDY",), ("+QIND",), voice="ec25-qpcmv"),
        Dialect("huawei", "Huawei E173/E1550 (chan_dongle family)",
                ("AT+CLIP=1", "AT^CURC=1", "AT+CVHU=0"), "AT+CHUP", "huawei",
                "AT^ICCID?", ("^SYSSTART",),
                ("^BOOT", "^RSSI", "^MODE", "^HCSQ", "^DSFLOWRPT", "^SRVST"),
                voice="huawei-ddsetex", sim_removed_urc="^SIMST: 255"),
    )
}
