"""tools/evaluate.py on small clips written here: every container it reads gives the same numbers as the frames it
was given (within the codec's loss), a reference adds the fidelity rows, and bad input exits 2 with a message."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("cv2", reason="the flow metrics need opencv-python-headless (tests/requirements.txt)")

from tests.unit.test_clip_metrics import translation  # noqa: E402
from adlightning.metrics.sharpness import grey  # noqa: E402
from tools.evaluate import ClipError, load_clip, main  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _pil_frames(clip: torch.Tensor) -> list[Image.Image]:
    array = (clip.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    return [Image.fromarray(a) for a in array]


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return translation(2)


def test_lossless_containers_read_back_exactly(tmp_path, clip):
    frames = _pil_frames(clip)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):
        frame.save(folder / f"{i:03d}.png")
    frames[0].save(tmp_path / "a.webp", save_all=True, append_images=frames[1:], lossless=True, duration=100)
    expected = torch.from_numpy(np.stack([np.asarray(f) for f in frames])).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(load_clip(folder), expected)
    assert torch.equal(load_clip(tmp_path / "a.webp"), expected)
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
    gif = load_clip(tmp_path / "a.gif")                         # 256-colour palette: close, not exact
    assert gif.shape == expected.shape and (gif - expected).abs().mean() < 0.03


def test_an_mp4_reads_back_and_measures_the_motion(tmp_path, clip):
    av = pytest.importorskip("av")
    path = tmp_path / "a.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.options = {"qscale": "2"}
        for frame in _pil_frames(clip):
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    frames = load_clip(path)
    assert frames.shape == clip.shape
    # MPEG-4 at qscale 2 keeps luma close (4:2:0 halves the chroma of this per-pixel random colour, so compare grey)
    assert (grey(frames) - grey(clip)).abs().mean() < 0.02
    out = subprocess.run([sys.executable, "-m", "tools.evaluate", str(path), "--json"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    assert result["frames"] == 6
    assert result["motion_px"] == pytest.approx(2.0, abs=0.1)  # the clip moves 2 px a frame


def test_the_table_and_json_with_a_reference(tmp_path, clip, capsys):
    folder_a, folder_b = tmp_path / "a", tmp_path / "b"
    for folder, frames in ((folder_a, clip), (folder_b, (clip * 0.5 + 0.1))):
        folder.mkdir()
        for i, frame in enumerate(_pil_frames(frames)):
            frame.save(folder / f"{i:03d}.png")
    assert main([str(folder_a)]) == 0
    table = capsys.readouterr().out
    assert "motion amplitude (mean flow)" in table and "PSNR" not in table
    assert main([str(folder_a), "--reference", str(folder_a), "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["psnr"] is None and same["ssim"] == pytest.approx(1.0)      # identical: infinite PSNR -> null
    assert main([str(folder_a), "--reference", str(folder_b)]) == 0
    assert "PSNR vs reference, mean" in capsys.readouterr().out


def test_bad_input_is_named_and_exits_2(tmp_path, clip, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not a clip")
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video either")
    still = tmp_path / "still.png"
    _pil_frames(clip)[0].save(still)
    short = tmp_path / "short"
    short.mkdir()
    for path, message in ((text, "not a clip this tool reads"), (fake, "not a readable video"),
                          (still, "at least 2"), (tmp_path / "missing.mp4", "no such file"),
                          (short, "no frame images")):
        assert main([str(path)]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and message in err, err
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(_pil_frames(clip)):
        frame.save(folder / f"{i:03d}.png")
    assert main([str(folder), "--reference", str(folder / "000.png")]) == 2
    assert "at least 2" in capsys.readouterr().err
    with pytest.raises(ClipError):
        load_clip(text)
    run = subprocess.run([sys.executable, "-m", "tools.evaluate", str(text)], cwd=REPO, capture_output=True,
                         text=True)
    assert run.returncode == 2 and "not a clip this tool reads" in run.stderr
