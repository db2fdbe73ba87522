"""Each stage is versioned by the code it runs: a report change keeps the embeddings.

The package is copied to a temporary folder, one file is changed, and stage code versions (and a
real re-run of the stages, in a subprocess importing the copy) are compared.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import thresher
from thresher.caching import code_version, module_closure

ROOT = Path(thresher.__file__).parent


def _copy(tmp_path):
    pkg = tmp_path / "pkg" / "thresher"
    shutil.copytree(ROOT, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def _touch(path):
    path.write_text(path.read_text() + "\n# changed\n")


def test_closure_follows_lazy_imports_and_stays_out_of_the_report():
    embed = {p.relative_to(ROOT).as_posix() for p in module_closure("thresher.stages.embed")}
    assert "models/inference.py" in embed  # imported inside a function
    assert not any(p.startswith("reports/") for p in embed)
    report = {p.relative_to(ROOT).as_posix() for p in module_closure("thresher.stages.report")}
    assert "reports/pdf.py" in report
    # The root package's lazy client exports are no stage's code.
    assert not any(p.startswith(("client/", "server/", "worker/", "platform/")) for p in report)
    assert "__init__.py" not in report


def test_code_version_changes_only_for_stages_that_run_the_changed_code(tmp_path):
    pkg = _copy(tmp_path)
    before = {s: code_version(s, pkg) for s in ("embed", "report", "select")}
    _touch(pkg / "reports" / "pdf.py")
    code_version.cache_clear()
    after_report = {s: code_version(s, pkg) for s in before}
    assert after_report["embed"] == before["embed"]
    assert after_report["report"] != before["report"]
    _touch(pkg / "models" / "inference.py")
    code_version.cache_clear()
    assert code_version("embed", pkg) != before["embed"]


_RUN = """
import sys
from thresher.config import load_configs
from thresher.stages.list_input import list_input
from thresher.stages.corruption_check import corruption_check
from thresher.stages.deduplicate import deduplicate
from thresher.stages.embed import embed
cfg = load_configs({"num_processes": 0}, {"n_samples": 2})
listing = list_input(sys.argv[1], sys.argv[2])
dedup = deduplicate(corruption_check(listing))
import thresher
assert thresher.__file__.startswith(sys.argv[3]), thresher.__file__
print("EMBED:" + (embed(listing, dedup, cfg.worker, cfg.lightly).cached or "computed"))
"""


def test_rerun_after_report_change_keeps_embed_and_after_embed_change_recomputes(
    tmp_path, example_dataset
):
    pkg = _copy(tmp_path)
    lightly = tmp_path / "lightly"

    def run():
        out = subprocess.run(
            [sys.executable, "-c", _RUN, str(example_dataset.root), str(lightly), str(pkg)],
            capture_output=True,
            text=True,
            cwd=tmp_path,  # not the checkout: `python -c` puts the cwd first on sys.path
            env={"PYTHONPATH": str(pkg.parent), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            timeout=600,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        print(out.stdout[-500:], out.stderr[-1500:])
        return out.stdout.strip().rsplit("EMBED:", 1)[-1]

    assert run() == "computed"
    _touch(pkg / "reports" / "pdf.py")
    assert run() == "cached"
    _touch(pkg / "models" / "inference.py")
    assert run() == "computed"
