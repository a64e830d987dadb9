"""Manifest JSONL round trips and errors."""

from __future__ import annotations

import json

import pytest

from voxa.data import Record, iter_manifest, read_manifest, write_manifest
from voxa.errors import ManifestError


def test_round_trip_keeps_every_field(tmp_path):
    r = Record(id="a", path=str(tmp_path / "a.wav"), channel=1, start=0.5, duration=1.25,
               sample_rate=16000, speaker="s1", language="en", emotion="anger", text="hi there",
               extra={"phones": [[0.0, 0.1, "h#"]], "gender": "female"})
    write_manifest(tmp_path / "m.jsonl", [r])
    assert read_manifest(tmp_path / "m.jsonl") == [r]


def test_relative_paths_resolve_against_the_manifest_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "m.jsonl").write_text(json.dumps({"id": "a", "path": "x.wav"}) + "\n")
    (r,) = read_manifest(tmp_path / "sub" / "m.jsonl")
    assert r.path == str(tmp_path / "sub" / "x.wav")


def test_bad_json_names_file_and_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"id": "a", "path": "a.wav"}\n{oops\n')
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: not valid JSON"):
        read_manifest(p)


def test_record_without_path_is_rejected(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"id": "a"}\n')
    with pytest.raises(ManifestError, match="lacks 'id' or 'path'"):
        list(iter_manifest(p))


def test_unknown_keys_become_extras(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"id": "a", "path": "/a.wav", "gender": "male"}\n')
    (r,) = read_manifest(p)
    assert r.extra == {"gender": "male"}
