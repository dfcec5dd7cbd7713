"""Rectified flow and its samplers: known answers on straight paths."""

import pytest
import torch

from dreamdrive.diffusion.flow import (
    flow_loss,
    interpolate,
    resolution_shift,
    sample_timesteps,
    shift_timesteps,
    velocity_target,
)
from dreamdrive.diffusion.samplers import euler, guided, heun, timesteps


def test_the_path_and_its_velocity():
    x0, noise = torch.tensor([[1.0, -2.0]]), torch.tensor([[3.0, 0.0]])
    assert torch.equal(interpolate(x0, noise, torch.tensor([0.0])), x0)
    assert torch.equal(interpolate(x0, noise, torch.tensor([1.0])), noise)
    assert torch.allclose(interpolate(x0, noise, torch.tensor([0.25])), torch.tensor([[1.5, -1.5]]))
    assert torch.equal(velocity_target(x0, noise), torch.tensor([[2.0, 2.0]]))


def test_timesteps_are_logit_normal_and_shift_towards_noise():
    t = sample_timesteps(20_000, torch.Generator().manual_seed(0))
    assert 0 < float(t.min()) and float(t.max()) < 1 and abs(float(t.median()) - 0.5) < 0.02
    shifted = shift_timesteps(t, 3.0)
    assert (shifted >= t).all() and float(shifted.median()) == pytest.approx(0.75, abs=0.02)  # 3 * .5 / (1 + 2 * .5)
    assert resolution_shift(256) == 1.0 and resolution_shift(4096) == 4.0
    grid = timesteps(4)
    assert grid.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_the_loss_ignores_given_elements_and_weighs():
    x0, noise = torch.zeros(1, 4), torch.ones(1, 4)
    exact = velocity_target(x0, noise)
    wrong = exact.clone()
    wrong[0, 0] += 2.0
    assert float(flow_loss(exact, x0, noise)) == 0.0
    assert float(flow_loss(wrong, x0, noise)) == pytest.approx(1.0)  # 4 / 4 elements
    given = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert float(flow_loss(wrong, x0, noise, given=given)) == 0.0
    weight = torch.tensor([[3.0, 1.0, 1.0, 1.0]])
    assert float(flow_loss(wrong, x0, noise, weight=weight)) == pytest.approx(12.0 / 6.0)


@pytest.mark.parametrize("sampler, steps", [(euler, 3), (heun, 3), (euler, 1)])
def test_samplers_follow_a_straight_path_exactly(sampler, steps):
    """With the true velocity of one straight path, any step count lands on its data point."""
    x0 = torch.tensor([[0.5, -1.0, 2.0]])
    noise = torch.tensor([[1.0, 1.0, 1.0]])
    seen = []
    out = sampler(lambda x, t: noise - x0, noise, steps, callback=lambda i, x: seen.append(i))
    assert torch.allclose(out, x0, atol=1e-6) and seen == list(range(steps))


def test_guidance_mixes_the_velocities_and_keep_restores_given_content():
    conditional, unconditional = (lambda x, t: torch.ones_like(x)), (lambda x, t: torch.zeros_like(x))
    assert float(guided(conditional, unconditional, 2.5)(torch.zeros(1), torch.zeros(1))) == 2.5
    assert guided(conditional, unconditional, 1.0) is conditional
    given = torch.tensor([[7.0, 0.0]])
    out = euler(
        lambda x, t: torch.ones_like(x), torch.zeros(1, 2), 4, keep=lambda x, t: torch.where(given != 0, given, x)
    )
    assert out[0, 0] == 7.0 and out[0, 1] == pytest.approx(-1.0)


def test_euler_from_a_partly_noised_sample_lands_on_the_path_s_data_point():
    """SDEdit: started at time s from (1 - s) x0 + s eps, with the true velocity, it ends at x0, visiting only
    times below s."""
    x0, noise = torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[1.0, -3.0, 0.0]])
    times = []

    def velocity(x, t):
        times.append(float(t[0]))
        return noise - x0

    out = euler(velocity, interpolate(x0, noise, torch.tensor([0.3])), 4, start=0.3)
    assert torch.allclose(out, x0, atol=1e-6)
    assert times == pytest.approx([0.3, 0.225, 0.15, 0.075])
    with pytest.raises(ValueError, match="starts at a time"):
        euler(velocity, noise, 2, start=0.0)
