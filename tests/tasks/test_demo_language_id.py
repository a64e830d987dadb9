"""The demo's language-ID stage on a tiny generated Asterisk-like layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from voxa.tasks import demo


def _write_prompts(root, lang, centre_hz, n, rng):
    d = root / lang
    d.mkdir(parents=True)
    for i in range(n):
        t = np.arange(int(8000 * rng.uniform(1.2, 2.5))) / 8000
        x = 0.3 * np.sin(2 * np.pi * centre_hz * t * (1 + 0.05 * np.sin(2 * np.pi * 3 * t)))
        x += 0.02 * rng.standard_normal(t.size)
        sf.write(d / f"prompt-{i:02d}.wav", x.astype(np.float32), 8000)


@pytest.fixture
def fake_asterisk(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    root = tmp_path / "sounds"
    _write_prompts(root, "en", 300.0, 14, rng)
    _write_prompts(root, "fr", 900.0, 14, rng)
    monkeypatch.setenv("VOXA_ASTERISK", str(root))
    return root


def test_language_id_stage_reports_accuracy(tmp_path, fake_asterisk):
    ctx = demo.DemoContext(out=tmp_path / "out", data_root=None, quick=True)
    demo._stage_language_id(ctx)
    res = ctx.summary["language_identification"]
    assert res["languages"] == ["en", "fr"]
    assert res["accuracy"] >= 0.9
    saved = json.loads((tmp_path / "out" / "language_id" / "results.json").read_text())
    assert saved["system"] == "ivector-lda"


def test_language_id_stage_skips_without_prompts(tmp_path, monkeypatch):
    monkeypatch.setenv("VOXA_ASTERISK", str(tmp_path / "absent"))
    lines = []
    ctx = demo.DemoContext(out=tmp_path / "out", data_root=None, quick=True, report=lines.append)
    demo._stage_language_id(ctx)
    assert "language_identification" not in ctx.summary
    assert any("skipped" in line for line in lines)
