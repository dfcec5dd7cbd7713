"""Fuzzing the readers: a valid dataset's tables, a scenario JSON and a model config, mutated at random. Each
reader either reads the input or raises the project's error, never any other exception.

CI runs a few examples of each (DREAMDRIVE_FUZZ_EXAMPLES, default 20). The longer run documented in
docs/errors.md: `DREAMDRIVE_FUZZ_EXAMPLES=500 .venv/bin/python -m pytest -q tests/test_fuzz.py`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamdrive.core.errors import DreamdriveError
from dreamdrive.nusc.reader import NuscDataset
from dreamdrive.nusc.schema import TABLES

EXAMPLES = int(os.environ.get("DREAMDRIVE_FUZZ_EXAMPLES", "20"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
VERSION = "v1.0-dreamdrive"

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def mutate(record, data) -> object:
    """One random change to a JSON value: a field replaced or deleted, an item dropped, or the whole replaced."""
    if isinstance(record, dict) and record and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(record)))
        if data.draw(st.booleans()):
            return {k: v for k, v in record.items() if k != key}
        return {**record, key: mutate(record[key], data) if data.draw(st.booleans()) else data.draw(values)}
    if isinstance(record, list) and record and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(record) - 1))
        if data.draw(st.booleans()):
            return record[:index] + record[index + 1 :]
        return record[:index] + [mutate(record[index], data)] + record[index + 1 :]
    return data.draw(values)


@pytest.fixture(scope="module")
def tables(dataroot):
    return {table: json.loads((dataroot / VERSION / f"{table}.json").read_text()) for table in TABLES}


@FUZZ
@given(data=st.data())
def test_mutated_tables_are_read_or_refused(dataroot, tables, tmp_path_factory, data):
    root = tmp_path_factory.mktemp("fuzz")
    (root / VERSION).mkdir()
    for entry in dataroot.iterdir():  # the files are shared; the tables are this example's
        if entry.name != VERSION:
            (root / entry.name).symlink_to(entry)
    for name in (dataroot / VERSION).iterdir():
        if name.stem not in TABLES:
            shutil.copy(name, root / VERSION / name.name)
    changed = data.draw(st.sampled_from(TABLES))
    for table, rows in tables.items():
        rows = mutate(rows, data) if table == changed else rows
        (root / VERSION / f"{table}.json").write_text(json.dumps(rows))
    try:
        dataset = NuscDataset(root)
        dataset.check()
        dataset.summary()
        for scene in dataset.scene_names:
            dataset.clip(scene)
    except DreamdriveError:
        pass


@pytest.fixture(scope="module")
def scenario_record():
    from dreamdrive.pipelines.scenario import from_prompt

    scenario, _ = from_prompt("a car cuts in from the left", seed=0)
    return scenario.result.to_json()


@FUZZ
@given(data=st.data())
def test_mutated_scenarios_are_read_or_refused(scenario_record, data):
    from dreamdrive.scenario.types import ScriptResult

    try:
        ScriptResult.from_json(mutate(scenario_record, data))
    except DreamdriveError:
        pass


@FUZZ
@given(data=st.data())
def test_mutated_model_configs_are_read_or_refused(tmp_path_factory, data):
    from dreamdrive.models.vae import Autoencoder, VAEConfig, load_autoencoder

    folder = Autoencoder(VAEConfig(widths=(4, 4, 4, 4), blocks=1)).save(tmp_path_factory.mktemp("cfg") / "vae")
    record = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(mutate(record, data)))
    try:
        load_autoencoder(folder)
    except DreamdriveError:
        pass


def test_the_fuzzers_are_documented():
    text = (Path(__file__).parents[1] / "docs" / "errors.md").read_text()
    assert "DREAMDRIVE_FUZZ_EXAMPLES" in text
