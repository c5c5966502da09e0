"""Lightning's sigma schedules: golden numbers, and agreement with diffusers' own scheduler."""
import pytest

from harness.reference import sqrt_linear_sigmas
from samplers.schedules import sgm_uniform, sigmas_for, trailing

GOLDEN = {  # diffusers EulerDiscreteScheduler(beta_schedule="linear", timestep_spacing="trailing"), 4 decimals
    1: [25.1461, 0.0],
    2: [25.1461, 2.2760, 0.0],
    4: [25.1461, 6.5572, 2.2760, 0.8670, 0.0],
    8: [25.1461, 12.3225, 6.5572, 3.7553, 2.2760, 1.4192, 0.8670, 0.4613, 0.0],
}


@pytest.fixture(scope="module")
def table():
    return sqrt_linear_sigmas()


@pytest.mark.parametrize("steps", sorted(GOLDEN))
def test_trailing_golden(table, steps):
    assert trailing(table, steps).tolist() == pytest.approx(GOLDEN[steps], abs=5e-5)


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 6, 8, 10])
def test_trailing_matches_diffusers(table, steps):
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.EulerDiscreteScheduler(beta_schedule="linear", beta_start=0.00085, beta_end=0.012,
                                           timestep_spacing="trailing", num_train_timesteps=1000)
    ref.set_timesteps(steps)
    assert trailing(table, steps).tolist() == pytest.approx(ref.sigmas.tolist(), rel=1e-5)


def test_table_is_not_comfyuis_sd15_default(table):
    # ComfyUI's SD1.5 default spaces sqrt(beta) ("linear" there): sigma_max 14.6146, the wrong schedule here.
    assert table[-1].item() == pytest.approx(25.1461, abs=1e-4)
    assert table[0].item() == pytest.approx(0.029168, abs=1e-5)


# ComfyUI's sgm_uniform drifts from trailing as steps grow (t = 124.875 vs 124 at 8 steps).
@pytest.mark.parametrize("steps,bound", [(1, 1e-6), (2, 0.004), (4, 0.004), (8, 0.006)])
def test_sgm_uniform_close_to_trailing(table, steps, bound):
    a, b = sgm_uniform(table, steps), trailing(table, steps)
    assert a[-1].item() == 0.0 and len(a) == steps + 1
    rel = ((a[:-1] - b[:-1]).abs() / b[:-1]).max().item()
    assert rel < bound
    if steps > 1:
        assert rel > 1e-4  # a different schedule, not an alias


def test_sgm_uniform_golden_4_steps(table):
    # ComfyUI 0.14.1 calculate_sigmas(sqrt_linear model_sampling, "sgm_uniform", 4), checked on the host to 2e-6.
    assert sgm_uniform(table, 4).tolist() == pytest.approx([25.1461, 6.5650, 2.2803, 0.8698, 0.0], abs=5e-5)


def test_denoise_keeps_the_tail_of_a_longer_schedule(table):
    out = sigmas_for("trailing", table, 4, denoise=0.5)
    assert out.tolist() == pytest.approx(GOLDEN[8][4:], abs=5e-5)
    assert sigmas_for("trailing", table, 4).tolist() == pytest.approx(GOLDEN[4], abs=5e-5)


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_bad_steps_rejected(table, bad):
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        trailing(table, bad)


def test_bad_scheduler_and_denoise_rejected(table):
    with pytest.raises(ValueError, match="unknown scheduler 'karras'"):
        sigmas_for("karras", table, 4)
    with pytest.raises(ValueError, match="denoise must be in"):
        sigmas_for("trailing", table, 4, denoise=0.0)
