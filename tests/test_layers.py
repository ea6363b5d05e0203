"""The layers of DESIGN.md hold: a layer imports only the layers below it."""
from __future__ import annotations


def test_the_controller_never_imports_the_simulators():
    """Layers: controller/ uses firmware's Line API and helpers, never firmware/sim/."""
    import pathlib
    root = pathlib.Path(__file__).resolve().parent.parent / "controller"
    offenders = [str(p.relative_to(root.parent)) for p in root.rglob("*.py")
                 if "firmware.sim" in p.read_text(encoding="utf-8")]
    assert offenders == []
