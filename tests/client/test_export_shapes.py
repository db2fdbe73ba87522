"""The Label Studio and Labelbox exports, checked by those projects' own code.

Label Studio: each task must pass ``label_studio_sdk``'s import model (``ImportApiRequest``,
what ``projects.import_tasks`` sends) and its ``LabelInterface.validate_task`` for an image
labeling config (``<Image value="$image"/>``: ``data.image`` must be there), and ``data.image``
must be a URL that fetches the image without a token. Labelbox v4: the rows must pass the
validation ``labelbox``'s ``Dataset.create_data_rows`` applies before uploading
(``DescriptorFileCreator``: known keys, ``row_data`` present and not ``s3://``) and carry a
``MediaType`` value.

Both SDKs pull heavy or conflicting dependencies, so they live in ``.ci/label-tools``
(``pip install --no-deps --target``, see ``.ci/run``) and run in a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.platform.helpers import ready_dataset, schedule, worker
from tests.server.conftest import Api, api  # noqa: F401
from thresher.platform import runs, tags, users
from thresher.wire import RunStateUpdate

REPO = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO / ".ci" / "label-tools"
#: The install command (``.ci/run`` runs the same); the SDKs' other dependencies are in the venv.
PIP_INSTALL = [
    *("install", "--quiet", "--no-deps", "--target", str(TOOLS_DIR)),
    *("label-studio-sdk==2.1.2", "labelbox==7.17.0", "lbox-clients==1.1.2"),
    *("xmljson==0.2.1", "jsf==0.11.2", "lxml==6.1.3", "ujson==6.1.0", "nltk==3.10.4"),
    *("faker==40.63.0", "rstr==3.2.2", "smart-open==9.0.2", "appdirs==1.4.4", "strenum==0.5.0"),
]

VALIDATE = r"""
import json, sys

tasks, rows = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))

from label_studio_sdk.label_interface import LabelInterface
from label_studio_sdk.types.import_api_request import ImportApiRequest

config = (
    '<View><Image name="image" value="$image"/>'
    '<RectangleLabels name="label" toName="image"><Label value="car"/></RectangleLabels></View>'
)
interface = LabelInterface(config)
assert tasks, "no tasks"
for task in tasks:
    ImportApiRequest.model_validate(task)
    assert isinstance(task["id"], int), task
    assert interface.validate_task(task), task
assert not interface.validate_task({"data": {"img": "http://x/a.png"}})  # the check can fail

from labelbox.schema.internal.descriptor_file_creator import DescriptorFileCreator
from labelbox.schema.media_type import MediaType

creator = DescriptorFileCreator(None)
assert rows, "no rows"
creator._prepare_items_for_upload([dict(r) for r in rows])
for row in rows:
    MediaType(row["media_type"])
try:  # the check can fail: camelCase keys are not Labelbox's
    creator._prepare_items_for_upload([{"rowData": rows[0]["row_data"]}])
except Exception as e:
    print("camelCase refused:", type(e).__name__)
else:
    raise SystemExit("labelbox accepted camelCase keys")
print("valid", len(tasks), len(rows))
"""


@pytest.fixture(scope="session")
def label_tools() -> Path:
    """``.ci/label-tools`` with label-studio-sdk and labelbox (installed here if missing)."""
    if not (TOOLS_DIR / "labelbox-7.17.0.dist-info").is_dir():
        try:
            out = subprocess.run(
                [sys.executable, "-m", "pip", *PIP_INSTALL],
                capture_output=True,
                text=True,
                timeout=600,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            pytest.skip(f"cannot install the label tools into {TOOLS_DIR}: {e}")
        if out.returncode != 0:
            pytest.skip(
                f"cannot install the label tools into {TOOLS_DIR} (no PyPI?): "
                + out.stderr.strip()[-500:]
            )
    return TOOLS_DIR


def _plant(served: Api) -> tuple[str, str]:
    from PIL import Image

    p = served.platform
    alice = users.authenticate(p, served.token)
    (served.mount / "in" / "sub").mkdir(parents=True)
    names = ["car 1.png", "sub/car-2.png"]
    for name in names:
        buf = io.BytesIO()
        Image.new("RGB", (8, 6), (10, 200, 30)).save(buf, format="PNG")
        (served.mount / "in" / name).write_bytes(buf.getvalue())
    d = ready_dataset(p, alice)
    schedule(p, alice, d)
    claimed = runs.claim(p, alice, worker(p, alice))
    assert claimed is not None
    tag = tags.record_run_selection(p, alice, claimed.run.id, names)
    runs.update_state(p, alice, claimed.run.id, RunStateUpdate(state="COMPLETED"))
    return d, tag


def test_label_studio_and_labelbox_accept_the_exports(
    api: Api,  # noqa: F811
    label_tools: Path,
    tmp_path: Path,
) -> None:
    from PIL import Image

    d, tag = _plant(api)
    base = f"/v1/datasets/{d}/tags/{tag}/export"
    tasks = api.client.get(f"{base}/LabelStudio/tasks", params=api.auth()).json()
    rows = api.client.get(f"{base}/LabelBoxV4/datarows", params=api.auth()).json()
    for url in [t["data"]["image"] for t in tasks] + [r["row_data"] for r in rows]:
        parts = urlsplit(url)
        got = api.client.get(f"{parts.path}?{parts.query}")  # what the tool fetches: no token
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(got.content)) as img:
            assert img.size == (8, 6)
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    env = {**os.environ, "PYTHONPATH": str(label_tools)}
    out = subprocess.run(
        [sys.executable, "-c", VALIDATE, str(tmp_path / "tasks.json"), str(tmp_path / "rows.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid 2 2" in out.stdout and "camelCase refused" in out.stdout
