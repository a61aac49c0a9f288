"""PatchingParams: one rule for "None means the model's default", so the API, the CLI and the
library report the same resolved settings and cut the same patches, in every mode."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

import pytest

from blt_core.patching import PatchingParams
from webapp_helpers import REPO, SHIPPED_MODEL, make_app

TEXT = "Byte Latent Transformers read bytes, not tokens. Patches grow where text is predictable."
MODES = [None, "entropy", "entropy_monotonic", "static", "space"]          # None: the model's mode
SETTINGS = {"defaults": {}, "explicit": {"threshold": 0.75, "max_patch_length": 5, "patch_size": 3}}
FIELDS = ("mode", "threshold", "max_patch_length", "patch_size")


@pytest.fixture(scope="module")
def app():
    return make_app()


@pytest.fixture(scope="module")
def model(app):
    return app.extensions["blt_model"].get().model


def _cli_patch(options: dict) -> dict:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    out = subprocess.run([sys.executable, "-m", "blt_core", "--model", str(SHIPPED_MODEL), "patch", TEXT, "--json",
                          *flags], capture_output=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr.decode()
    return json.loads(out.stdout)


def test_resolve_fills_only_unset_options(model):
    cfg = model.config
    assert PatchingParams().resolve(cfg) == PatchingParams(cfg.patching_mode, cfg.patching_threshold,
                                                           cfg.max_patch_length, cfg.patch_size)
    explicit = PatchingParams("static", 0.0, 2, 7)                         # 0.0 is a threshold, not "unset"
    assert explicit.resolve(cfg) == explicit
    assert PatchingParams(threshold=0.0).resolve(cfg).threshold == 0.0


def test_api_defaults_are_the_resolved_params(app, model):
    defaults = app.test_client().get("/api/models").json["defaults"]
    assert defaults == asdict(PatchingParams().resolve(model.config))


def test_keywords_and_params_are_one_way_not_both(model):
    assert model.patch(TEXT, mode="space", max_patch_length=4).lengths == \
        model.patch(TEXT, patching=PatchingParams(mode="space", max_patch_length=4)).lengths
    with pytest.raises(TypeError, match="not both"):
        model.patch(TEXT, mode="space", patching=PatchingParams(mode="static"))


@pytest.mark.parametrize("settings", list(SETTINGS), ids=list(SETTINGS))
@pytest.mark.parametrize("mode", MODES, ids=[m or "default-mode" for m in MODES])
def test_api_cli_and_library_agree(app, model, mode, settings):
    options = {**({"mode": mode} if mode else {}), **SETTINGS[settings]}
    params = PatchingParams(**options)
    resolved = asdict(params.resolve(model.config))
    ref = model.patch(TEXT, patching=params)

    api = app.test_client().post("/api/patch", json={"text": TEXT, **options})
    assert api.status_code == 200, api.json
    assert {k: api.json[k] for k in FIELDS} == resolved
    assert api.json["patch_lengths"] == ref.lengths[1:]                     # the API leaves BOS's patch out

    cli = _cli_patch(options)
    assert {k: cli[k] for k in FIELDS} == resolved
    assert cli["lengths"] == ref.lengths and cli["starts"] == ref.starts
