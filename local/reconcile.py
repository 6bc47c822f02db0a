"""`make reconcile` against the `make dev` stack: reconciliation with the stack's own settings.

The dev defaults (local.dev_config.settings_values: bucket, emulator endpoint and keys, SQLite
path under DEV_DATA_DIR) under whatever the caller's environment overrides, then
`tools.reconcile.main`. With OSS_BUCKET set in the environment, `make reconcile` runs
`python -m tools.reconcile` instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from local.dev_config import DevOptions, function_values, settings_values
from tools.reconcile import main as reconcile_main


def dev_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings `python -m local.dev` gives the reconcile role, for the ports DEV_* name."""
    options = DevOptions.from_env(environ)
    ports = {"app": options.app_port, "callback": options.callback_port, "oss": options.oss_port}
    return function_values(settings_values(environ, options, ports), "reconcile")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    return reconcile_main(argv, dev_settings(os.environ if environ is None else environ))


if __name__ == "__main__":
    sys.exit(main())
