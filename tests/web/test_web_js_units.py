"""The page's pure JS modules (web/js/) under Node's test runner (web/tests/), against
reference data computed here in Python: SAM's postprocess and coordinate scaling from
``decoder_runtime``, RLE strings from pycocotools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))


def test_web_js_units(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    from web_js_fixtures import write

    write(tmp_path)
    env = dict(os.environ, MASKLOOP_JS_FIXTURES=str(tmp_path))
    result = subprocess.run(
        [node, "--test", "web/tests/"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "# fail 0" in result.stdout
