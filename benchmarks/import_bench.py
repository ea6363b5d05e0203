"""Import speed: a generated creditor CSV (cp1251, `;`, mixed phones) through `dialbox import`.

Run: python3 -m benchmarks.import_bench [--rows 1000000] [--repeat 3] [--xlsx-rows 100000]
Each repeat imports into a fresh data directory in a new process (end to end: the CLI, decoding,
parsing, phone normalization, SQLite with fsync); one more run re-imports the same file into the
filled database (every account updated). Reports the median wall and CPU time of the repeats,
and how long a write from another process (as the dialer's) waited for the database during the
first import. Then the same rows as an XLSX sheet (--xlsx-rows of them) through both XLSX
readers, python-calamine and openpyxl, in the same run.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_RUNNER = ("import sys; from dialbox import cli; "
           "cli._COMMAND_MODULES = tuple(dict.fromkeys(cli._COMMAND_MODULES + "
           "('dialbox.cmd_import',))); sys.exit(cli.main(sys.argv[1:]))")
_FORMATS = ("8 ({a}) {b}-{c}-{d}", "+7 {a} {b}{c}{d}", "8{a}{b}{c}{d}", "{a}{b}{c}{d}",
            "+7{a}{b}{c}{d}", "+7 ({a}) {b}-{c}-{d}")
_REGIONS = ("Москва", "Свердловская область", "Новосибирская область", "Приморский край",
            "Республика Татарстан", "Санкт-Петербург")


def phone(rng: random.Random) -> str:
    n = f"9{rng.choice('0124589')}{rng.randrange(10)}{rng.randrange(10 ** 7):07d}"
    return rng.choice(_FORMATS).format(a=n[:3], b=n[3:6], c=n[6:8], d=n[8:])


def generate(path: Path, rows: int, seed: int = 1) -> None:
    """A call list as creditors send them: title-less, cp1251, one bad phone in 500."""
    rng = random.Random(seed)
    with path.open("w", encoding="cp1251", newline="") as fh:
        fh.write("Номер договора;ФИО;Мобильный телефон;Домашний телефон;Сумма долга;Просрочка;"
                 "Регион;Продукт;Комментарий\r\n")
        for i in range(rows):
            mobile = phone(rng) if rng.random() > 0.002 else "12-34"
            home = f"+7 343 {rng.randrange(10 ** 7):07d}" if rng.random() < 0.3 else ""
            fh.write(f"D-{i:08d};Иванов Иван Иванович {i};{mobile};{home};"
                     f"{rng.randrange(1000, 900000)},{rng.randrange(100):02d};"
                     f"{rng.randrange(1, 400)};{rng.choice(_REGIONS)};"
                     f"{rng.choice(('карта', 'заём', 'автокредит'))};\r\n")


def xlsx_from_csv(csv_path: Path, xlsx_path: Path, rows: int) -> None:
    import csv

    import openpyxl
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Реестр")
    with csv_path.open(encoding="cp1251", newline="") as fh:
        for i, row in enumerate(csv.reader(fh, delimiter=";")):
            if i > rows:
                break
            ws.append(row)
    wb.save(xlsx_path)


def time_xlsx(tmp: Path, xlsx_path: Path, repeat: int) -> dict[str, float]:
    import logging

    import structlog

    from controller import importer
    from controller.calllist import import_file
    from controller.store import Store
    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    out = {}
    for reader in ("calamine", "openpyxl"):
        importer.XLSX_READER = reader
        times = []
        for r in range(repeat):
            db = tmp / f"x-{reader}-{r}.sqlite3"
            s = Store(db)
            t0 = time.perf_counter()
            import_file(s, "bench", xlsx_path)
            times.append(time.perf_counter() - t0)
            s.close()
        out[reader] = statistics.median(times)
    return out


def run_import(data: Path, csv_path: Path, probe: list[float] | None = None
               ) -> tuple[float, float, dict]:
    """Wall seconds, CPU seconds (user + system, the import process) and the JSON summary.

    With ``probe``, this process meanwhile writes to the same database every 50 ms, as the
    dialer does, and appends how long each write waited for the import's write lock.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER, "import", "--data", str(data),
                             "--campaign", "bench", str(csv_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if probe is not None:
        _probe_writes(data / "dialbox.sqlite3", proc, probe)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"import failed: {err}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, json.loads(out)


def _probe_writes(db_path: Path, proc: subprocess.Popen, waits: list[float]) -> None:
    import sqlite3
    db = None
    while proc.poll() is None:
        time.sleep(0.05)
        try:
            if db is None:
                db = sqlite3.connect(db_path, isolation_level=None, timeout=60)
                db.execute("PRAGMA synchronous=FULL")
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name='campaigns'").fetchone() \
                    or not db.execute("SELECT 1 FROM campaigns").fetchone():
                continue
            t = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE campaigns SET status=status")
            db.execute("COMMIT")
            waits.append(time.perf_counter() - t)
        except sqlite3.OperationalError:  # the file is being created
            db = None
    if db is not None:
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--xlsx-rows", type=int, default=100_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="import-bench-"))
    try:
        csv_path = tmp / "list.csv"
        t0 = time.perf_counter()
        generate(csv_path, args.rows)
        print(f"generated {args.rows} rows, {csv_path.stat().st_size / 1e6:.0f} MB, "
              f"in {time.perf_counter() - t0:.1f} s")
        times, cpus, waits = [], [], []
        for r in range(args.repeat):
            data = tmp / f"d{r}"
            dt, cpu, summary = run_import(data, csv_path, waits if r == 0 else None)
            times.append(dt)
            cpus.append(cpu)
            print(f"fresh import {r + 1}: {dt:.1f} s wall, {cpu:.1f} s CPU  {summary}")
            if r < args.repeat - 1:
                shutil.rmtree(data)
        waits.sort()
        print(f"a dialer-like write every 50 ms during import 1 ({len(waits)} writes) waited: "
              f"median {statistics.median(waits) * 1000:.2f} ms, "
              f"p99 {waits[int(0.99 * (len(waits) - 1))] * 1000:.0f} ms, "
              f"max {waits[-1] * 1000:.0f} ms")
        dt, cpu, summary = run_import(tmp / f"d{args.repeat - 1}", csv_path)
        print(f"re-import (all updated): {dt:.1f} s wall, {cpu:.1f} s CPU  {summary}")
        print(f"median fresh import of {args.rows} rows: {statistics.median(times):.1f} s wall "
              f"({args.rows / statistics.median(times):,.0f} rows/s), "
              f"{statistics.median(cpus):.1f} s CPU")
        if args.xlsx_rows:
            xlsx_path = tmp / "list.xlsx"
            xlsx_from_csv(csv_path, xlsx_path, args.xlsx_rows)
            for reader, dt in time_xlsx(tmp, xlsx_path, args.repeat).items():
                print(f"XLSX {args.xlsx_rows} rows, {reader}: median {dt:.1f} s "
                      f"({args.xlsx_rows / dt:,.0f} rows/s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
