"""The offline translator on prompts it was not written from: behaviours checked on the trajectories."""

import numpy as np
import pytest

from dreamdrive.pipelines.scenario import from_prompt
from dreamdrive.scenario.offline import translate_offline
from dreamdrive.scenario.translate import TranslationError
from tests.scenario.prompts import NONSENSE, PROMPTS

LANE = 3.5


def _tracks(data, kind=None):
    out = []
    for actor in data["actors"]:
        if kind is None or actor["class"] == kind:
            out.append((actor, np.asarray(actor["trajectory"])))
    return out


def holds(check: str, data: dict) -> bool:
    """Whether the trajectories (road frame, rows x, y, yaw, speed at data["hz"]) show `check`."""
    ego = np.asarray(data["ego"])
    hz = data["hz"]
    vehicles = [(a, t) for a, t in _tracks(data) if a["class"] not in ("pedestrian", "traffic_cone", "barrier")]
    people = _tracks(data, "pedestrian")
    if check == "cut_in":  # starts in a neighbouring lane, ends in the ego's lane ahead of it
        return any(
            abs(abs(t[0, 1]) - LANE) < 0.6 and abs(t[-1, 1] - ego[-1, 1]) < 0.5 and t[-1, 0] > ego[-1, 0]
            for _, t in vehicles
        )
    if check == "hard_brake":
        return any(t[0, 3] > 1 and t[-1, 3] == 0 and (-np.diff(t[:, 3]) * hz).max() > 4 for _, t in vehicles)
    if check in ("dash_out", "cross"):
        for _, t in people:
            inside = np.flatnonzero(np.abs(t[:, 1] - ego[:, 1]) < LANE / 2)
            if len(inside) and (check == "cross" or t[inside[0], 0] > ego[inside[0], 0]):
                if check == "cross" or np.abs(np.diff(t[:, 1])).max() * hz > 2.5:
                    return True
        return False
    if check == "overtake":
        return any(t[0, 0] < ego[0, 0] and t[-1, 0] > ego[-1, 0] for _, t in vehicles)
    if check == "oncoming":
        return any(t[-1, 0] < t[0, 0] - 5 for _, t in vehicles)
    if check == "stopped":
        return any(t[:, 3].max() == 0 and abs(t[0, 1]) < 0.5 and t[0, 0] > 0 for _, t in vehicles)
    if check == "parked":
        return any(a.get("state") == "parked" for a, _ in vehicles)
    if check == "follow":
        return any(abs(t[:, 1]).max() < 0.5 and (t[:, 0] < ego[:, 0]).all() for _, t in vehicles)
    if check == "change_lane":
        return any(np.ptp(t[:, 1]) > LANE * 0.9 for _, t in vehicles)
    if check == "work_zone":
        return len(_tracks(data, "traffic_cone")) >= 3
    key, value = check.split("=")
    if key == "weather":
        return data["weather"] == value
    if key == "time":
        return data["time_of_day"] == value
    if key == "class":
        return bool(_tracks(data, value))
    if key == "color":
        return any(a.get("color") == value for a, _ in vehicles)
    if key == "count":
        kind, number = value.split(":")
        return len(_tracks(data, kind)) == int(number)
    if key == "ego_speed":
        return abs(ego[0, 3] - float(value)) < 0.2
    raise ValueError(check)


@pytest.fixture(scope="module")
def outcomes():
    results = {}
    for prompt, checks in PROMPTS:
        try:
            scenario, _ = from_prompt(prompt)
        except TranslationError as error:
            results[prompt] = (None, [f"not translated: {error}"])
            continue
        failed = [c for c in checks if not holds(c, scenario.result.to_json())]
        results[prompt] = (scenario, failed)
    return results


def test_enough_prompts():
    assert len(PROMPTS) >= 60


def test_offline_translator_meets_ninety_percent(outcomes):
    failures = {p: failed for p, (_, failed) in outcomes.items() if failed}
    rate = 1 - len(failures) / len(outcomes)
    assert rate >= 0.9, f"{rate:.0%} met; failures: {failures}"


def test_every_output_passes_the_validators(outcomes):
    for prompt, (scenario, _) in outcomes.items():
        if scenario is not None and not scenario.crash_requested:
            remaining = [line for line in scenario.report if not line.startswith(("moved", "removed"))]
            assert not remaining, (prompt, remaining)


@pytest.mark.parametrize("prompt", NONSENSE)
def test_nonsense_is_refused_with_what_was_not_understood(prompt):
    with pytest.raises(TranslationError, match="could not place|nothing in"):
        translate_offline(prompt)


def test_same_prompt_same_script():
    assert translate_offline(PROMPTS[2][0]) == translate_offline(PROMPTS[2][0])
