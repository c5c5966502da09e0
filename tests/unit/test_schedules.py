"""Lightning's sigma schedules: golden numbers, and agreement with diffusers' own scheduler."""
import pytest
import torch

from dev.harness.reference import sqrt_linear_sigmas
from adlightning.samplers.schedules import denoise_steps, sgm_uniform, sigmas_for, trailing

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


def test_denoise_stays_on_the_distilled_grid(table):
    # 4 steps at denoise 0.5 runs timesteps 499, 249 of the 4-step grid (diffusers' strength 0.5), not 499/374/249/124.
    out = sigmas_for("trailing", table, 4, denoise=0.5)
    assert out.tolist() == pytest.approx(GOLDEN[4][2:], abs=5e-5)
    assert torch.equal(out[:-1], table[[499, 249]])
    assert torch.equal(sigmas_for("trailing", table, 4, denoise=0.75)[:-1], table[[749, 499, 249]])
    assert sigmas_for("trailing", table, 4).tolist() == pytest.approx(GOLDEN[4], abs=5e-5)


@pytest.mark.parametrize("steps,denoise,kept", [
    (4, 1.0, 4), (4, 0.99, 3), (4, 0.75, 3), (4, 0.5, 2), (4, 0.26, 1), (4, 0.25, 1), (4, 0.1, 1), (4, 0.01, 1),
    (100, 0.29, 29), (10, 0.3, 3), (10, 0.7, 7), (8, 0.13, 1), (1, 0.5, 1)])
def test_denoise_steps_rule(steps, denoise, kept):
    # floor(steps * denoise), at least one step, without float floor slips (0.29 * 100 = 28.999999999999996).
    assert denoise_steps(steps, denoise) == kept
    assert len(sigmas_for("trailing", sqrt_linear_sigmas(), steps, denoise)) == kept + 1


# (diffusers runs no step at all where int(steps * strength) is 0; this pack runs one, tested above)
@pytest.mark.parametrize("steps,strength", [(s, d) for s in (1, 2, 4, 8) for d in (0.25, 0.5, 0.6, 0.75, 0.9, 1.0)
                                            if int(s * d) > 0])
def test_denoise_matches_diffusers_strength(table, steps, strength):
    # diffusers' img2img pipelines: init = int(steps * strength), run timesteps[steps - init:].
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.EulerDiscreteScheduler(beta_schedule="linear", beta_start=0.00085, beta_end=0.012,
                                           timestep_spacing="trailing", num_train_timesteps=1000)
    ref.set_timesteps(steps)
    init = int(steps * strength)
    expected = ref.sigmas[steps - init:].tolist()
    assert sigmas_for("trailing", table, steps, strength).tolist() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("scheduler", ["trailing", "sgm_uniform"])
def test_every_schedule_strictly_decreases_to_zero(table, scheduler):
    # The whole grid steps 1..100 x denoise 0.01..1.00: before the fix 735 trailing schedules were not strictly
    # decreasing (a t = -1 point jumping back to sigma_max before the final 0, or a repeated sigma).
    bad = []
    for steps in range(1, 101):
        for hundredths in range(1, 101):
            sigmas = sigmas_for(scheduler, table, steps, hundredths / 100)
            if sigmas[-1].item() != 0.0 or not bool((sigmas[1:] < sigmas[:-1]).all()) \
                    or len(sigmas) != denoise_steps(steps, hundredths / 100) + 1:
                bad.append((steps, hundredths))
    assert bad == []


def test_61_steps_no_longer_jumps_back_to_sigma_max(table):
    sigmas = sigmas_for("trailing", table, 61)
    assert len(sigmas) == 62 and sigmas[0].item() == pytest.approx(25.1461, abs=1e-4)
    assert sigmas[-3:].tolist() == pytest.approx([0.1859, 0.1227, 0.0], abs=1e-4)


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_bad_steps_rejected(table, bad):
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        trailing(table, bad)


def test_bad_scheduler_and_denoise_rejected(table):
    with pytest.raises(ValueError, match="unknown scheduler 'karras'"):
        sigmas_for("karras", table, 4)
    with pytest.raises(ValueError, match="denoise must be in"):
        sigmas_for("trailing", table, 4, denoise=0.0)
