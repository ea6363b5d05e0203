"""``dialbox simulate SCENARIO.yaml --pacing NAME``: run a pacer on a simulated floor."""
from __future__ import annotations

import argparse
import json
import logging
import sys

import structlog

from firmware.errors import UserError


def add_parser(subparsers) -> None:
    """Register the ``simulate`` subcommand."""
    from controller.pacing import PACER_NAMES
    p = subparsers.add_parser(
        "simulate", help="simulate a collection floor under a pacing algorithm",
        description="Run a pacing algorithm on a simulated floor described by a scenario file.")
    p.add_argument("scenario", help="scenario YAML (see benchmarks/scenarios/)")
    p.add_argument("--pacing", default="predictive", choices=PACER_NAMES,
                   help="pacing algorithm (default: predictive)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the simulation and print its figures."""
    from controller.pacing import simulate
    from controller.pacing.scenario import load_scenario
    if not structlog.is_configured():
        # Keep stdout for the figures (and its JSON parseable): pacer notices go to stderr.
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                            logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    scenario = load_scenario(args.scenario)
    result = simulate(scenario, args.pacing, seed=args.seed).to_dict()
    if args.json:
        print(json.dumps(result))
        return 0
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    return 0
