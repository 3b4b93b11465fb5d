"""``python -m pytest_gradcheck COMMAND ...``: the plugin's commands outside a pytest run.

One command so far, ``combine`` (:mod:`.reporting.combine`): merge the ``--gradcheck-json``
reports of CI shards and gate on regressions against the baseline.

Layer: the command line, at the top beside the plugin; imports only the command it runs.
"""

from __future__ import annotations

import sys

USAGE = """usage: python -m pytest_gradcheck COMMAND [ARGS]

commands:
  combine REPORT.json... [--json OUT] [--html OUT] [--baseline [PATH]] [--update-baseline]
          merge the --gradcheck-json reports of several pytest runs (CI shards) into one report;
          with --baseline, exit 1 when a check regressed against it
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 4
    command, rest = argv[0], argv[1:]
    if command != "combine":
        print(f"{USAGE}\npython -m pytest_gradcheck: error: unknown command {command!r}", file=sys.stderr)
        return 4
    from .reporting import combine

    try:
        return combine.main(rest)
    except KeyboardInterrupt:
        # every write is atomic: each file is either unchanged or completely written
        print("gradcheck combine: interrupted; each file is either unchanged or completely written", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
