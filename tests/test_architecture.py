"""The core packages and the platform's server and client never import Prefect."""

import subprocess
import sys

CORE = (
    "thresher.config",
    "thresher.storage.location",
    "thresher.checks.corruption",
    "thresher.stages.list_input",
    "thresher.stages.corruption_check",
    "thresher.stages.deduplicate",
    "thresher.stages.train",
    "thresher.stages.embed",
    "thresher.stages.select",
    "thresher.stages.report",
    "thresher.stages.write_results",
    "thresher.selection",
    "thresher.models",
    "thresher.models.train",
    "thresher.reports",
    "thresher.caching",
    "thresher.runlog",
    # The platform's service layer, HTTP layer and client never need Prefect either: only the
    # worker's flow process does.
    "thresher.platform.core",
    "thresher.server.app",
    "thresher.client",
    "thresher.wire",
)


def test_core_packages_never_import_prefect():
    code = (
        "import sys\n"
        f"for m in {CORE!r}: __import__(m)\n"
        "bad = sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"Prefect imported by the core: {out.stdout.strip()[:300]}"
