"""Every benchmark, one after the other, with the same options (e.g. --quick, --store sqlite).

.venv/bin/python -m bench.all [--quick] [--store sqlite|postgres|both]
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ("command_intake", "alarm_storm", "replay", "latency", "size", "snapshots")


def main() -> None:
    args = sys.argv[1:]
    failed = []
    for name in BENCHMARKS:
        print(f"\n### bench.{name} {' '.join(args)}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}", *args]).returncode != 0:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
