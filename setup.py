"""dialbox: an on-prem dialer appliance for small debt-collection shops."""
from __future__ import annotations

import glob
import os
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext


def _extensions() -> list:
    """Every cext/_*.pyx becomes an extension, unless DIALBOX_NO_EXTENSIONS=1."""
    if os.environ.get("DIALBOX_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("dialbox: Cython missing, using the pure-Python twins", file=sys.stderr)
        return []
    exts = [
        Extension(f"cext.{os.path.splitext(os.path.basename(p))[0]}", [p])
        for p in sorted(glob.glob(os.path.join("cext", "_*.pyx")))
    ]
    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )


class OptionalBuildExt(build_ext):
    """Build the extensions when a compiler is there; fall back to the twins when not."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers: the twins take over
            print(f"dialbox: C extensions not built ({exc}); pure-Python twins will be used",
                  file=sys.stderr)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"dialbox: {ext.name} not built ({exc}); its pure-Python twin will be used",
                  file=sys.stderr)


setup(
    name="dialbox",
    version="0.1.0",
    description="On-prem dialer appliance for small debt-collection shops",
    python_requires=">=3.11",
    packages=find_packages(include=["cext", "firmware*", "controller*", "web_admin*",
                                    "hw_profiles", "dialbox*", "benchmarks*"]),
    package_data={
        "hw_profiles": ["*.yaml"],
        "controller": ["data/*.csv"],
        "web_admin": ["templates/*.html", "static/*", "locales/babel.cfg", "locales/*/LC_MESSAGES/*.po"],
        "cext": ["*.pyx", "*.pxd"],
        "benchmarks": ["scenarios/*.yaml"],
    },
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
    install_requires=[
        "pyserial>=3.5",
        "pyserial-asyncio-fast>=0.16",
        "PyYAML>=6.0",
        "aiohttp>=3.9",
        "aiohttp-jinja2>=1.6",
        "Babel>=2.14",  # gettext catalogues, locale-aware money, numbers and dates
        "structlog>=24.1",
        "phonenumbers>=8.13",
        "holidays>=0.109",
        "argon2-cffi>=23.1",
        "tzdata",
        "gsm0338>=1.1",
        "openpyxl>=3.1",  # XLSX call lists
        "python-calamine>=0.2",  # XLSX, faster reader used when present
        "av>=12",  # PyAV: Opus recordings, prompt upload conversion (FFmpeg libraries in the wheel)
        "cryptography>=42",  # the box's own CA and server certificate for HTTPS
        "aiortc>=1.9",  # the operator's headset over WebRTC (aioice, ifaddr, pylibsrtp)
        "ifaddr>=0.2",  # the box's own addresses, shown on the settings page
        "prometheus-client>=0.19",  # /metrics
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-benchmark>=4",
            "pytest-aiohttp>=1.0",
            "pytest-asyncio>=0.23",
            "hypothesis>=6.100",
            "pytest-timeout>=2.3",
            "smspdudecoder>=2.2",
            "bitstring>=4.2,<5",  # smspdudecoder needs BitStream, gone in bitstring 5
            "playwright>=1.40",  # drives the system's Chromium (never downloads a browser)
            "schemathesis>=4.0",  # fuzzes /api/v1 against its OpenAPI document
        ],
    },
    entry_points={"console_scripts": ["dialbox = dialbox.cli:main"]},
)
