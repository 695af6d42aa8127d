"""Scanning inside a sandbox: `python3 -m scanner.sandboxed ROOT OPTIONS_JSON` prints the JSON report.

The worker validates the repository's configuration itself and passes the
resulting options as JSON, so nothing here reads configuration or the network.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, date, datetime

from scanner.engine import scan_tree
from scanner.options import Ignore, ScanOptions
from scanner.report import render


def options_from_json(text: str) -> ScanOptions:
    data = json.loads(text)
    return ScanOptions(
        excludes=tuple(data.get("excludes", ())),
        rule_overrides=data.get("rule_overrides", {}),
        fail_on=data.get("fail_on", "high"),
        jobs=data.get("jobs"),
        ignores=tuple(
            Ignore(
                entry["fingerprint"],
                entry["reason"],
                date.fromisoformat(entry["until"]) if entry.get("until") else None,
            )
            for entry in data.get("ignores", ())
        ),
        today=date.fromisoformat(data["today"]) if data.get("today") else None,
    )


def options_to_json(options: ScanOptions) -> str:
    return json.dumps(
        {
            "excludes": list(options.excludes),
            "rule_overrides": {rule: str(value) for rule, value in options.rule_overrides.items()},
            "fail_on": str(options.fail_on),
            "jobs": options.jobs,
            "ignores": [
                {
                    "fingerprint": entry.fingerprint,
                    "reason": entry.reason,
                    "until": entry.until.isoformat() if entry.until else None,
                }
                for entry in options.ignores
            ],
            "today": options.today.isoformat() if options.today else None,
        }
    )


def main(argv: list[str] | None = None) -> int:
    root, text = (sys.argv[1:] if argv is None else argv)[:2]
    options = options_from_json(text)
    if options.today is None:
        # The process edge: a caller that sent no date gets today's (UTC) for `ignore:` expiry.
        options = replace(options, today=datetime.now(UTC).date())
    sys.stdout.write(render(scan_tree(root, options), "json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
