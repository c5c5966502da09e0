"""A blind A/B study of two configurations: make the clips, serve the rating page, close the study, write the report.

    python -m tools.study generate --id lightning_vs_v2 --comfy-output ~/ComfyUI/output [--prompts 9] [--size 512]
    python -m tools.study serve ~/adlightning-studies/lightning_vs_v2      # raters open the URL it prints
    python -m tools.study close ~/adlightning-studies/lightning_vs_v2      # or on the page, with the organiser secret
    python -m tools.study report ~/adlightning-studies/lightning_vs_v2

`generate` queues every prompt of study/prompts.json (or --prompts N of them, round-robin over the themes) under both
configurations on a running ComfyUI through tools/client.py, with one seed per pair (study seed + prompt index), and
saves the scrubbed clips under random names and a manifest into ROOT/ID (ROOT: --root, default ~/adlightning-studies;
never inside a folder ComfyUI serves). It runs on the ComfyUI machine: each clip's unscrubbed original is deleted from
ComfyUI's output folder (--comfy-output) and its prompt from ComfyUI's history, so ComfyUI keeps nothing that tells the
configurations apart. Interrupted? Run the same command again: finished clips are kept. The organiser secret is printed
once, when the study is made.

`serve` runs the rating page for a study folder (or a folder of studies) on its own small server, on 127.0.0.1 unless
--host opens it (e.g. --host 0.0.0.0 for raters on the LAN); ComfyUI itself stays on loopback.

A configuration is {"name": shown after closing, "workflow": a shipped API workflow's name or an API-format file,
"overrides": any of tools/client.py apply_overrides' keys (steps, cfg, motion_module, ckpt, negative, fps, ...)};
--configs takes a JSON file {"A": config, "B": config}. The default is the paper's comparison on one checkpoint:
Lightning 4-step (4 steps, cfg 1.0) against AnimateDiff v2 (mm_sd_v15_v2.ckpt, 25 steps, cfg 7.5), both through the
pack's sampler. Exit status: 0 done, 1 ComfyUI failed a clip, 2 bad input or ComfyUI unreachable.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
import uuid
from pathlib import Path

from adlightning.study import generate as gen
from adlightning.study import report as rep
from adlightning.study import server as study_server
from adlightning.study.store import DEFAULT_MAX_RATERS, StudyStore
from . import client

DEFAULT_ROOT = Path("~") / "adlightning-studies"
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


def set_prefix(api: dict, prefix: str) -> None:
    """Every save node writes under the clip's own throw-away prefix (gen.throwaway_prefix)."""
    saves = [n for n in api.values() if isinstance(n["inputs"].get("filename_prefix"), str)]
    if not saves:
        raise gen.StudyError("a study workflow needs a save node with a filename_prefix (Save Video)")
    for node in saves:
        node["inputs"]["filename_prefix"] = prefix


def output_items(entry: dict) -> list[dict]:
    """Every file a history entry names ({filename, subfolder, type}), in the order client.download_outputs takes."""
    return [item for node_output in entry.get("outputs", {}).values() for kind in client.OUTPUT_KINDS
            for item in node_output.get(kind, []) if isinstance(item, dict)]


def queue_and_wait(comfy: client.Comfy, api: dict, timeout: float, queued: list) -> dict:
    """client.run's queue and wait, keeping the prompt id (appended to `queued` at once, so it is forgotten even when
    the prompt fails) for the clean-up; the finished history entry."""
    client.check_names(api, comfy.object_info(node["class_type"] for node in api.values()))
    client_id = uuid.uuid4().hex
    ws = comfy.connect(client_id)
    deadline = time.monotonic() + timeout
    try:
        queued.append(comfy.queue(api, client_id))
        client.follow(ws, comfy, api, queued[-1], deadline, lambda text: None)
    finally:
        ws.close()
    return client.wait_for_history(comfy, api, queued[-1], deadline)


def forget(comfy: client.Comfy, prompt_id: str) -> None:
    """Delete a prompt's entry from ComfyUI's history (core's POST /history {"delete": [...]}): it holds the whole
    workflow, motion module name included, and /history serves it to anyone who reaches ComfyUI."""
    status, _ = comfy.request("/history", {"delete": [prompt_id]})
    if status != 200 or comfy.history(prompt_id) is not None:
        raise gen.StudyError(f"ComfyUI kept prompt {prompt_id} in its history (POST /history answered {status}); "
                             f"delete it there (the queue panel's history) before raters can reach ComfyUI")


def comfy_render(server: str, timeout: float, comfy_output: Path):
    comfy = client.Comfy(server)

    def render(config: dict, prompt: str, seed: int, workdir: Path) -> Path:
        api = client.apply_overrides(client.load_workflow(config["workflow"]), prompt=prompt, seed=seed,
                                     **config["overrides"])
        prefix = gen.throwaway_prefix()
        set_prefix(api, prefix)
        queued: list[str] = []
        try:
            entry = queue_and_wait(comfy, api, timeout, queued)
            items = output_items(entry)
            if any(item.get("type") != "output" for item in items):
                raise gen.StudyError(f"config {config.get('name')}: the workflow shows previews (temp files ComfyUI "
                                     f"serves); a study workflow must save its one MP4 and nothing else")
            saved = client.download_outputs(comfy, entry, workdir)
            gen.remove_originals(comfy_output, prefix, items, saved)
        finally:
            for prompt_id in queued:
                forget(comfy, prompt_id)
        videos = [p for p in saved if p.suffix.lower() == ".mp4"]
        if len(videos) != 1 or len(saved) != 1:
            raise gen.StudyError(f"config {config.get('name')}: the workflow saved {[p.name for p in saved]}; a study "
                                 f"workflow must save exactly one MP4 clip")
        return videos[0]
    return render


def generate_command(args) -> int:
    servers = [s.strip() for s in args.server.split(",") if s.strip()]
    outputs = [Path(o.strip()).expanduser() for o in args.comfy_output.split(",") if o.strip()]
    if len(outputs) == 1:
        outputs *= len(servers)   # servers that share one output folder
    if len(outputs) != len(servers):
        raise gen.StudyError(f"--comfy-output names {len(outputs)} folders for {len(servers)} servers: give one "
                             f"output folder per --server, in the same order (or one they share)")
    for comfy_output in outputs:
        if comfy_output.exists() and not comfy_output.is_dir():   # absent is fine: ComfyUI makes it on its first save
            raise gen.StudyError(f"--comfy-output {comfy_output}: not a folder; give ComfyUI's output folder (the "
                                 f"generator deletes the unscrubbed originals it makes there)")
    root = gen.check_root(args.root, outputs[0])
    for comfy_output in outputs[1:]:
        gen.check_root(args.root, comfy_output)
    shared = {k: v for k, v in (("size", args.size), ("frames", args.frames), ("ckpt", args.ckpt)) if v is not None}
    configs = load_configs(args.configs, shared)
    prompts = gen.select_prompts(gen.load_prompts(args.prompt_file), args.prompts)
    folder = root / args.id
    try:
        old = gen.read_manifest(folder, complete=False) if folder.is_dir() else None
    except gen.StudyError as e:
        raise gen.StudyError(f"{folder}: {e}") from None
    seed = args.seed if args.seed is not None else old["seed"] if old else secrets.randbelow(2 ** 31)
    print(f"study {args.id} in {folder}: {len(prompts)} prompts x 2 configurations, seed {seed}", flush=True)
    renders = [comfy_render(server, args.timeout, output) for server, output in zip(servers, outputs)]
    gen.generate(folder, args.id, seed, configs, prompts, renders, log=lambda line: print(line, flush=True))
    print(f"done: serve it to the raters with  python -m tools.study serve {folder}")
    return 0


def open_store(folder) -> StudyStore:
    try:
        return StudyStore(folder)
    except gen.StudyError as e:
        raise gen.StudyError(f"{folder}: {e}") from None


def report_command(args) -> int:
    folder = Path(args.folder)
    for kind, path in rep.write(folder, open_store(folder).report()).items():
        print(f"{kind}: {path}")
    return 0


def close_command(args) -> int:
    store = open_store(args.folder)
    closed = store.close()
    names = ", ".join(f"{side} = {config['name']}" for side, config in store.configs().items())
    print(f"closed {args.folder}: {closed.get('raters')} rater(s), {closed.get('votes')} votes; {names}; report in "
          f"{Path(args.folder) / 'report.md'}")
    return 0


def serve_command(args) -> int:
    gen.check_root(args.folder)
    try:
        asyncio.run(study_server.serve(args.folder, args.host, args.port, args.max_raters, args.allow_host,
                                       say=lambda line: print(line, flush=True)))
    except KeyboardInterrupt:
        pass
    return 0


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise gen.StudyError(f"{message} (see {self.prog} --help)")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m tools.study", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    g = sub.add_parser("generate", help="make (or resume making) a study's clips through ComfyUI")
    g.add_argument("--id", default="lightning_vs_v2", help="study name: folder and URL (default lightning_vs_v2)")
    g.add_argument("--root", default=str(DEFAULT_ROOT), help=f"folder of studies, outside every folder ComfyUI "
                                                             f"serves (default {DEFAULT_ROOT})")
    g.add_argument("--comfy-output", required=True, help="ComfyUI's output folder on this machine: the generator "
                                                         "deletes there the unscrubbed originals it made (with "
                                                         "several --server, one folder each, comma-separated)")
    g.add_argument("--server", default=client.DEFAULT_SERVER,
                   help=f"ComfyUI HOST:PORT (default {client.DEFAULT_SERVER}); several, comma-separated, make clips "
                        f"side by side (one ComfyUI per GPU)")
    g.add_argument("--configs", help="JSON file {\"A\": config, \"B\": config} (default: Lightning 4-step against "
                                     "AnimateDiff v2 at 25 steps, cfg 7.5)")
    g.add_argument("--seed", type=int, help="study seed (pair i gets seed + i; default: random, kept on resume)")
    g.add_argument("--prompts", "--limit", dest="prompts", type=int, help="only N prompts, round-robin over themes")
    g.add_argument("--prompt-file", help="JSON or CSV prompt set (default study/prompts.json)")
    g.add_argument("--size", help="WIDTHxHEIGHT (or one number) for both configurations")
    g.add_argument("--frames", type=int, help="frame count for both configurations")
    g.add_argument("--ckpt", help="SD1.5 checkpoint for both configurations")
    g.add_argument("--timeout", type=float, default=3600, help="give up on a clip after this many seconds")
    s = sub.add_parser("serve", help="run the rating page for a study folder (or a folder of studies)")
    s.add_argument("folder")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only; "
                                                      "0.0.0.0 opens it to the raters' network)")
    s.add_argument("--port", type=int, default=study_server.DEFAULT_PORT,
                   help=f"port (default {study_server.DEFAULT_PORT}; 0 picks a free one)")
    s.add_argument("--max-raters", type=int, default=DEFAULT_MAX_RATERS,
                   help=f"raters a study takes votes from (default {DEFAULT_MAX_RATERS})")
    s.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name raters use for this machine, besides its IP addresses and own names")
    r = sub.add_parser("report", help="write report.json, report.md and report.svg into a study folder")
    r.add_argument("folder")
    c = sub.add_parser("close", help="close a study (no more votes; names and report revealed on the page)")
    c.add_argument("folder")
    return p


COMMANDS = {"generate": generate_command, "serve": serve_command, "report": report_command, "close": close_command}


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
