"""A blind A/B study of two configurations: make the clips, close the study, write the report.

    python -m tools.study generate --id lightning_vs_v2 [--prompts 9] [--size 512] [--frames 16] [--configs ab.json]
    # rate at http://127.0.0.1:8188/adlightning/study/ (served by the pack), close the study there, then
    python -m tools.study report output/adlightning_study/lightning_vs_v2

`generate` queues every prompt of study/prompts.json (or --prompts N of them, round-robin over the themes) under both
configurations on a running ComfyUI through tools/client.py, with one seed per pair (study seed + prompt index),
and saves the pairs and a manifest into ROOT/ID (ROOT defaults to ./output/adlightning_study: run from the ComfyUI
folder and the study lands where the rating page looks, ComfyUI's output/adlightning_study/). Interrupted? Run the
same command again: finished clips are kept.

A configuration is {"name": shown after closing, "workflow": a shipped API workflow's name or an API-format file,
"overrides": any of tools/client.py apply_overrides' keys (steps, cfg, motion_module, ckpt, negative, fps, ...)};
--configs takes a JSON file {"A": config, "B": config}. The default is the paper's comparison on one checkpoint:
Lightning 4-step (4 steps, cfg 1.0) against AnimateDiff v2 (mm_sd_v15_v2.ckpt, 25 steps, cfg 7.5), both through the
pack's sampler. Exit status: 0 done, 1 ComfyUI failed a clip, 2 bad input or ComfyUI unreachable.
"""
from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path

from adlightning.study import generate as gen
from adlightning.study import report as rep
from adlightning.study.store import StudyStore, read_votes
from . import client

DEFAULT_ROOT = Path("output") / "adlightning_study"
DEFAULT_CONFIGS = {
    "A": {"name": "AnimateDiff-Lightning 4-step", "workflow": "t2v_lightning",
          "overrides": {"motion_module": "animatediff_lightning_4step_comfyui.safetensors", "steps": 4, "cfg": 1.0}},
    "B": {"name": "AnimateDiff v2, 25 steps, cfg 7.5", "workflow": "t2v_lightning",
          "overrides": {"motion_module": "mm_sd_v15_v2.ckpt", "steps": 25, "cfg": 7.5}},
}
OVERRIDE_KEYS = set(client.OVERRIDES) - {"prompt", "seed", "schedule"}


def load_configs(path: str | None, shared: dict) -> dict:
    """The two configurations, with the overrides both share (--size, --frames, --ckpt) and format mp4 added."""
    if path:
        try:
            configs = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise gen.StudyError(f"--configs {path}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise gen.StudyError(f"--configs {path} is not JSON: {e}") from None
    else:
        configs = json.loads(json.dumps(DEFAULT_CONFIGS))
    if not isinstance(configs, dict) or set(configs) != {"A", "B"}:
        raise gen.StudyError(f"--configs {path}: give {{\"A\": config, \"B\": config}}, got keys "
                             f"{sorted(configs) if isinstance(configs, dict) else type(configs).__name__}")
    for side, config in configs.items():
        if not isinstance(config, dict) or not config.get("workflow"):
            raise gen.StudyError(f"--configs {path}: config {side} needs a 'workflow' (a shipped name such as "
                                 f"t2v_lightning, or an API-format file)")
        overrides = {**config.get("overrides", {}), **shared}
        unknown = sorted(set(overrides) - OVERRIDE_KEYS - {"format"})
        if unknown:
            raise gen.StudyError(f"--configs {path}: config {side} has unknown override(s) {unknown}; known: "
                                 f"{', '.join(sorted(OVERRIDE_KEYS))}")
        overrides.setdefault("format", "mp4")   # study clips are MP4: their metadata is scrubbed (study/blind.py)
        client.load_workflow(config["workflow"])   # fail now, not after the first clip
        config["overrides"] = overrides
        config.setdefault("name", f"{side}: {config['workflow']}")
    return configs


def comfy_render(server: str, timeout: float):
    def render(config: dict, prompt: str, seed: int, workdir: Path) -> Path:
        api = client.apply_overrides(client.load_workflow(config["workflow"]), prompt=prompt, seed=seed,
                                     **config["overrides"])
        saved = client.run(api, server=server, out=workdir, timeout=timeout)
        videos = [p for p in saved if p.suffix.lower() == ".mp4"]
        if len(videos) != 1:
            raise gen.StudyError(f"config {config.get('name')}: the workflow saved {[p.name for p in saved]}; a study "
                                 f"workflow must save exactly one MP4 clip")
        return videos[0]
    return render


def generate_command(args) -> int:
    shared = {k: v for k, v in (("size", args.size), ("frames", args.frames), ("ckpt", args.ckpt)) if v is not None}
    configs = load_configs(args.configs, shared)
    prompts = gen.select_prompts(gen.load_prompts(args.prompt_file), args.prompts)
    folder = Path(args.root) / args.id
    old = gen.read_manifest(folder) if folder.is_dir() else None
    seed = args.seed if args.seed is not None else old["seed"] if old else secrets.randbelow(2 ** 31)
    print(f"study {args.id} in {folder}: {len(prompts)} prompts x 2 configurations, seed {seed}", flush=True)
    gen.generate(folder, args.id, seed, configs, prompts, comfy_render(args.server, args.timeout),
                 log=lambda line: print(line, flush=True))
    print(f"done: rate at http://{args.server}/adlightning/study/{args.id}/ (if {folder} is in ComfyUI's "
          f"output/adlightning_study/)")
    return 0


def report_command(args) -> int:
    folder = Path(args.folder)
    manifest = gen.read_manifest(folder)
    if manifest is None:
        raise gen.StudyError(f"{folder} has no manifest.json: give a study folder made by tools/study.py generate")
    pairs = {p["id"]: p for p in manifest["pairs"]}
    report = rep.build(manifest, read_votes(folder, pairs))
    for kind, path in rep.write(folder, report).items():
        print(f"{kind}: {path}")
    return 0


def close_command(args) -> int:
    closed = StudyStore(args.folder).close()
    print(f"closed {args.folder}: {closed['raters']} rater(s), {closed['votes']} votes")
    return 0


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise gen.StudyError(f"{message} (see {self.prog} --help)")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="study.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    g = sub.add_parser("generate", help="make (or resume making) a study's clips through ComfyUI")
    g.add_argument("--id", default="lightning_vs_v2", help="study name: folder and URL (default lightning_vs_v2)")
    g.add_argument("--root", default=str(DEFAULT_ROOT), help=f"folder of studies (default ./{DEFAULT_ROOT}, i.e. "
                                                             f"ComfyUI's when run from the ComfyUI folder)")
    g.add_argument("--server", default=client.DEFAULT_SERVER, help=f"ComfyUI HOST:PORT (default {client.DEFAULT_SERVER})")
    g.add_argument("--configs", help="JSON file {\"A\": config, \"B\": config} (default: Lightning 4-step against "
                                     "AnimateDiff v2 at 25 steps, cfg 7.5)")
    g.add_argument("--seed", type=int, help="study seed (pair i gets seed + i; default: random, kept on resume)")
    g.add_argument("--prompts", "--limit", dest="prompts", type=int, help="only N prompts, round-robin over themes")
    g.add_argument("--prompt-file", help="JSON or CSV prompt set (default study/prompts.json)")
    g.add_argument("--size", help="WIDTHxHEIGHT (or one number) for both configurations")
    g.add_argument("--frames", type=int, help="frame count for both configurations")
    g.add_argument("--ckpt", help="SD1.5 checkpoint for both configurations")
    g.add_argument("--timeout", type=float, default=3600, help="give up on a clip after this many seconds")
    r = sub.add_parser("report", help="write report.json, report.md and report.svg into a study folder")
    r.add_argument("folder")
    c = sub.add_parser("close", help="close a study (no more votes; names and report revealed on the page)")
    c.add_argument("folder")
    return p


COMMANDS = {"generate": generate_command, "report": report_command, "close": close_command}


def main(argv=None) -> int:
    try:
        args = parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except gen.StudyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except client.ClientError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume (finished clips are kept)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
