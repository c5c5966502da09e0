"""Prompt-travel schedule parser and per-frame interpolation (samplers/prompt_schedule.py)."""
import pytest
import torch

from adlightning.samplers import prompt_schedule as ps


def frames_and_prompts(text, frames):
    return [(frame, k.prompt) for frame, k in ps.resolve(ps.parse(text), frames)]


def test_index_and_percent_keyframes():
    text = "0: a seed\n50%: a sprout\n100%: a flower"
    assert frames_and_prompts(text, 48) == [(0, "a seed"), (24, "a sprout"), (47, "a flower")]
    # percent keyframes move with the clip length; index keyframes do not
    assert frames_and_prompts(text, 17) == [(0, "a seed"), (8, "a sprout"), (16, "a flower")]
    assert frames_and_prompts("12.5%: x\n3: y", 9) == [(1, "x"), (3, "y")]


def test_out_of_order_keys_are_sorted_and_blank_and_comment_lines_skipped():
    text = "\n\n24: b\n   \n# a comment\n0: a\n\n12: c\n"
    assert frames_and_prompts(text, 32) == [(0, "a"), (12, "c"), (24, "b")]
    assert [k.line for _, k in ps.resolve(ps.parse(text), 32)] == [6, 8, 3]


def test_fizznodes_style_lines():
    text = '{\n"0": "a seed in the soil",\n"16" : "a sprout, (green:1.2)"\n}'
    assert frames_and_prompts(text, 32) == [(0, "a seed in the soil"), (16, "a sprout, (green:1.2)")]


def test_colons_inside_the_prompt_are_kept():
    assert frames_and_prompts("0: (red:1.3) apple: ripe", 4) == [(0, "(red:1.3) apple: ripe")]


def test_duplicate_keys_name_both_lines():
    with pytest.raises(ps.ScheduleError, match=r"line 3: frame 8 already has a prompt \(line 1\)"):
        ps.resolve(ps.parse("8: a\n0: b\n8: c"), 16)
    # an index and a percentage that land on the same frame are duplicates too
    with pytest.raises(ps.ScheduleError, match=r"line 2: frame 24 already has a prompt \(line 1\)"):
        ps.resolve(ps.parse("24: a\n50%: b"), 49)


@pytest.mark.parametrize("text, line, what", [
    ("0: a\nno colon here", 2, "is not 'frame: prompt'"),
    ("0: a\n\n-3: b", 3, "is not a frame"),
    ("x: b", 1, "is not a frame"),
    ("0: a\n2.5: b", 2, "is not a frame"),
    ("0: a\n: b", 2, "is not a frame"),
])
def test_bad_lines_are_named(text, line, what):
    with pytest.raises(ps.ScheduleError, match=rf"schedule line {line}: .*{what}"):
        ps.parse(text)


def test_empty_schedule_says_how_to_write_one():
    with pytest.raises(ps.ScheduleError, match="no keyframes.*0: a seed in the soil"):
        ps.parse("\n  \n# only a comment\n")


def test_prefix_and_suffix_reach_every_keyframe():
    assert ps.with_prefix_suffix("a sprout", "masterpiece", "(soft light:1.2)") == \
        "masterpiece, a sprout, (soft light:1.2)"
    assert ps.with_prefix_suffix("a sprout", "", " ") == "a sprout"
    assert ps.with_prefix_suffix("", "style", "") == "style"


def embeddings(n, tokens=3, dim=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(1, tokens, dim, generator=gen) for _ in range(n)]


def test_linear_interpolation_frame_k_is_the_formula():
    e = embeddings(3)
    keys = [4, 10, 12]
    out = ps.interpolate(e, keys, 16, "linear")
    assert out.shape == (16, 3, 4)
    for k in range(16):
        if k <= 4:
            expected = e[0]
        elif k >= 12:
            expected = e[2]
        elif k < 10:
            t = (k - 4) / 6
            expected = e[0] * (1 - t) + e[1] * t
        else:
            t = (k - 10) / 2
            expected = e[1] * (1 - t) + e[2] * t
        assert torch.equal(out[k:k + 1], expected), k
    # and the formula in numbers: frame 7 is half way between keyframes 4 and 10
    assert torch.allclose(out[7], (e[0][0] + e[1][0]) / 2, atol=1e-6)
    assert torch.equal(out[10], e[1][0])   # a keyframe's own frame is exactly its embedding


def test_hold_switches_at_each_keyframe():
    e = embeddings(3)
    out = ps.interpolate(e, [2, 5, 9], 12, "hold")
    owner = [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    for k, i in enumerate(owner):
        assert torch.equal(out[k], e[i][0]), k


def test_keyframe_past_the_last_frame_still_pulls_towards_its_prompt():
    e = embeddings(2)
    keys = [f for f, _ in ps.resolve(ps.parse("0: a\n20: b"), 16)]
    assert keys == [0, 20]
    out = ps.interpolate(e, keys, 16, "linear")
    assert torch.equal(out[15:16], e[0] * (1 - 15 / 20) + e[1] * (15 / 20))
    assert not torch.equal(out[15], e[1][0])


def test_one_keyframe_gives_its_embedding_on_every_frame():
    e = embeddings(1)
    out = ps.interpolate(e, [5], 8, "linear")
    assert all(torch.equal(out[k], e[0][0]) for k in range(8))


def test_pooled_outputs_interpolate_like_embeddings():
    pooled = [torch.full((1, 768), 0.0), torch.full((1, 768), 1.0)]
    out = ps.interpolate(pooled, [0, 4], 5, "linear")
    assert out[:, 0].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_long_prompts_are_repeated_to_a_common_token_length():
    short, long = torch.arange(3.0).view(1, 3, 1), torch.arange(6.0).view(1, 6, 1) + 10
    a, b = ps.equal_token_lengths([short, long])
    assert a[0, :, 0].tolist() == [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]
    assert b is long


def test_unknown_interpolation_is_refused():
    with pytest.raises(ps.ScheduleError, match="linear, hold"):
        ps.frame_mix(1, [0, 4], "cubic")
