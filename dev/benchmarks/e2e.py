"""How fast is it on my machine: the shipped workflows end to end in a real ComfyUI, node by node.

    python -m dev.benchmarks.e2e --comfyui /path/to/ComfyUI [--frames 16] [--size 512] [--runs 5]

Starts ComfyUI with this pack the way the host tests do (on CUDA when torch sees a GPU, else on the CPU; --cpu forces
the CPU) with random-weight, full-size model files that dev/harness/ makes once (cached in ADL_TEST_CACHE, default
~/.cache/adlightning-tests; nothing is downloaded), or with the files of an existing models folder (--models DIR:
DIR/checkpoints, DIR/animatediff_models, ... under the names the shipped workflows use). Then it queues every shipped API workflow
(workflows/api/*.json), the upscale workflow once more with realesr-animevideov3, and the text-to-video graph without
the motion module ("plain": the SD1.5 limit), each --warmup times untimed (model loading) and --runs times with new
seeds, and prints per graph:
  * each executed node's median / min / max seconds (from ComfyUI's websocket `executing` events),
  * end to end: queue to the prompt's `execution_success`,
  * peak VRAM (the benchmark's /adlightning/memory route, dev/harness/memory_node: torch's max_memory_allocated, reset before every run) and the
    server's peak RSS (VmHWM, reset before every run),
  * the motion module's overhead: the sampler's median with the motion module over the plain graph's.
and a Markdown summary table (the README's "Speed" tables are its output).

Smaller cards: --vram-gb 12 makes the GPU look like a 12 GiB card before ComfyUI starts: this process holds a ballast
allocation of everything free beyond 12 GiB, so ComfyUI's memory manager, the pack's batch sizes and the CUDA
allocator all see (and can only use) 12 GiB, as on the real card. e.g.
    python -m dev.benchmarks.e2e --comfyui ... --frames 32 --graphs t2v_upscale --vram-gb 12
--compile puts core's TorchCompileModel (inductor) in front of every graph's sampler, the plain one included; the
first run's time then shows the compile cost. --json-out appends one JSON line per timed run.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


from dev.harness.comfy_server import ComfyServer, PromptFailed
from dev.harness.graphs import load_api, nodes_of, sampler_id, without_motion
from dev.harness.models import model_files
from tools.client import WebSocket, apply_overrides

GiB = 2 ** 30
SHIPPED = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "workflows" / "api").glob("*.json"))
ANIME = "realesr-animevideov3.pth"
# Column of the summary table each node class belongs to.
COLUMNS = {"sampler": ("ADLightning_Sampler", "KSampler", "SamplerCustom", "SamplerCustomAdvanced"),
           "decode": ("VAEDecode", "ADLightning_DecodeFrames", "VAEDecodeTiled"),
           "upscale": ("ADLightning_UpscaleFrames", "ImageUpscaleWithModel")}
# Output nodes count as "save" (SaveAnimatedWEBP, SaveVideo, CreateVideo, ...).
SAVE_HINTS = ("Save", "CreateVideo", "VideoCombine")


def graphs(names: list[str], frames: int, size: int, long_frames: int | None, steps: int | None,
           compile_backend: str | None = None) -> dict:
    """label -> API prompt, sized for the run."""
    out = {}
    for name in names:
        base = name.split("@")[0]
        source = "t2v_lightning" if base == "plain" else base
        api = load_api(source)
        is_long = "ADLightning_ContextOptions" in {v["class_type"] for v in api.values()}
        api = apply_overrides(api, frames=(long_frames if is_long else frames), size=str(size), steps=steps)
        if base == "plain":
            api = without_motion(api)
        if name.endswith("@anime"):
            for node in nodes_of(api, "UpscaleModelLoader") + nodes_of(api, "ADLightning_LoadUpscaleModel"):
                api[node]["inputs"]["model_name"] = ANIME
        if compile_backend:
            sampler = api[sampler_id(api)]["inputs"]
            api["900"] = {"class_type": "TorchCompileModel",
                          "inputs": {"model": sampler["model"], "backend": compile_backend}}
            sampler["model"] = ["900", 0]
        out[name] = api
    return out


class Events:
    """Every websocket message of one client id, with the time it arrived."""

    def __init__(self, server: ComfyServer, client_id: str):
        self.client_id = client_id
        self.messages: list[tuple[float, dict]] = []
        self.changed = threading.Condition()
        self.ws = WebSocket("127.0.0.1", server.port, f"/ws?clientId={client_id}", timeout=30)
        self.ws.settimeout(None)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                opcode, data = self.ws.recv()
            except OSError:
                break
            if opcode == 8:
                break
            if opcode == 1:
                now = time.perf_counter()
                with self.changed:
                    self.messages.append((now, json.loads(data)))
                    self.changed.notify_all()
        with self.changed:
            self.messages.append((time.perf_counter(), {"type": "closed", "data": {}}))
            self.changed.notify_all()

    def wait_end(self, prompt_id: str, timeout: float) -> tuple[float, str]:
        """(arrival time, type) of the prompt's execution_success / execution_error / interrupted message."""
        deadline = time.perf_counter() + timeout
        with self.changed:
            while True:
                for t, m in self.messages:
                    if m["type"] == "closed":
                        raise RuntimeError("the server closed the websocket")
                    if m["type"] in ("execution_success", "execution_error", "execution_interrupted") and \
                            m["data"].get("prompt_id") == prompt_id:
                        return t, m["type"]
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout:.0f} s")
                self.changed.wait(min(left, 1.0))

    def node_seconds(self, prompt_id: str) -> list[tuple[str, float]]:
        """(node id, seconds) for each executed node: from its `executing` event to the next event of the prompt."""
        marks = [(t, m["data"].get("node") if m["type"] == "executing" else None) for t, m in self.messages
                 if m["type"] in ("executing", "execution_success", "execution_error")
                 and m["data"].get("prompt_id") == prompt_id]
        return [(node, t2 - t) for (t, node), (t2, _) in zip(marks, marks[1:]) if node is not None]


def memory(server: ComfyServer, reset: bool = False) -> dict | None:
    """The benchmark memory route (dev/harness/memory_node; None when the server has none)."""
    try:
        if reset:
            status, answer = server.post("/adlightning/memory/reset", {})
            if status in (404, 405):   # no such route: a pack version from before it, or another server
                return None
            if status != 200:
                raise RuntimeError(f"/adlightning/memory/reset answered {status}: {answer}")
            return answer
        return server.get("/adlightning/memory")
    except urllib.error.HTTPError:
        return None


def run_once(server: ComfyServer, events: Events, label: str, api: dict, i: int, warmup: int,
             timeout: float, switch: bool = False) -> dict:
    """Run i of a graph (the first `warmup` are warm-ups), timed. `switch`: the untimed run that follows another
    graph in --interleave rounds (ComfyUI swaps the patched model in: a cost graph-after-graph runs do not pay)."""
    # A new seed every run: ComfyUI really samples, loaders stay cached.
    prompt = apply_overrides(api, seed=1000 + i + (5000 if switch else 0))
    memory(server, reset=True)
    server.reset_peak_rss()
    start = time.perf_counter()
    prompt_id = server.queue(prompt, events.client_id)["prompt_id"]
    end, kind = events.wait_end(prompt_id, timeout)
    if kind != "execution_success":
        server.wait(prompt_id)   # raises PromptFailed with ComfyUI's error message
        raise PromptFailed(f"{label}: prompt ended with {kind}", {})
    vram = memory(server) or {}
    result = {"graph": label, "run": i - warmup, "warmup": i < warmup or switch, "switch": switch,
              "wall_s": end - start,
              "nodes": [(node, prompt[node]["class_type"], s) for node, s in events.node_seconds(prompt_id)],
              "peak_vram": vram.get("peak_allocated"), "peak_vram_reserved": vram.get("peak_reserved"),
              "peak_rss": server.peak_rss_bytes()}
    what = "after switching" if switch else "warm-up" if result["warmup"] else "run"
    print(f"  {label} {what} {i + 1 - warmup if i >= warmup else i + 1}: {result['wall_s']:.2f} s", flush=True)
    return result


def run_all(server: ComfyServer, events: Events, prompts: dict, warmup: int, runs: int, timeout: float,
            interleave: bool) -> dict[str, list[dict]]:
    """{label: results}. Graph after graph, or with `interleave` every graph's warm-ups first and then the timed
    runs in rounds (run 1 of each graph, run 2 of each, ...), so a drift in the machine's load hits every graph
    alike and a round's graphs can be compared with each other. In a round each graph first runs once untimed
    (`switch`): the first run after another graph pays for ComfyUI swapping the patched model in, which repeated
    runs of one graph, the usual case, do not; the summary prints what that run's sampler took."""
    results: dict[str, list[dict]] = {label: [] for label in prompts}
    if not interleave:
        for label, api in prompts.items():
            results[label] = [run_once(server, events, label, api, i, warmup, timeout) for i in range(warmup + runs)]
        return results
    for label, api in prompts.items():
        results[label] = [run_once(server, events, label, api, i, warmup, timeout) for i in range(warmup)]
    for i in range(warmup, warmup + runs):
        for label, api in prompts.items():
            results[label].append(run_once(server, events, label, api, i, warmup, timeout, switch=True))
            results[label].append(run_once(server, events, label, api, i, warmup, timeout))
    return results


def sampler_seconds(api: dict, results: list[dict]) -> list[float]:
    """The sampler node's seconds in each timed run, in run order."""
    return [s for r in results if not r["warmup"] for node, _, s in r["nodes"] if node == sampler_id(api)]


def stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def column_of(class_type: str) -> str | None:
    for column, types in COLUMNS.items():
        if class_type in types:
            return column
    return "save" if any(h in class_type for h in SAVE_HINTS) else None


def summarize(label: str, api: dict, results: list[dict]) -> dict:
    runs = [r for r in results if not r["warmup"]]
    first = [r["wall_s"] for r in results if r["warmup"] and not r.get("switch")][:1]
    per_node: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        for node, class_type, s in r["nodes"]:
            per_node.setdefault((node, class_type), []).append(s)
    wall = stats([r["wall_s"] for r in runs])
    vram = [r["peak_vram"] for r in runs if r["peak_vram"] is not None]
    reserved = [r["peak_vram_reserved"] for r in runs if r["peak_vram_reserved"] is not None]
    rss = max(r["peak_rss"] for r in runs)
    frames = max(v["inputs"].get("batch_size", 0) for v in api.values() if "batch_size" in v["inputs"])
    print(f"\n{label}: {len(runs)} runs, {frames} frames")
    print(f"  {'node':38s} {'median':>8s} {'min':>8s} {'max':>8s}")
    columns: dict[str, float] = {}
    for (node, class_type), seconds in per_node.items():
        med, lo, hi = stats(seconds)
        print(f"  {node + ' ' + class_type:38s} {med:8.3f} {lo:8.3f} {hi:8.3f}")
        column = column_of(class_type)
        if column:
            columns[column] = columns.get(column, 0.0) + med
    print(f"  {'end to end':38s} {wall[0]:8.3f} {wall[1]:8.3f} {wall[2]:8.3f}"
          + (f"   (first run, loading models: {first[0]:.2f} s)" if first else ""))
    print(f"  peak VRAM {max(vram) / GiB:.2f} GiB allocated, {max(reserved) / GiB:.2f} GiB reserved" if vram else
          "  peak VRAM: n/a (CPU run)", f"  peak RSS {rss / GiB:.2f} GiB", sep="\n")
    sampler = sampler_seconds(api, results)
    return {"label": label, "frames": frames, "wall": wall, "columns": columns, "first": first[0] if first else None,
            "sampler": statistics.median(sampler) if sampler else None,
            "vram": max(vram) if vram else None, "rss": rss}


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "", "| graph | frames | sampler s | decode s | upscale s | save s | end to end s (min-max) | "
             "first run s | peak VRAM GiB | peak RSS GiB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = [f"{row['columns'][c]:.2f}" if c in row["columns"] else "" for c in ("sampler", "decode", "upscale",
                                                                                       "save")]
        wall = row["wall"]
        first = f"{row['first']:.2f}" if row["first"] is not None else "-"
        vram = f"{row['vram'] / GiB:.2f}" if row["vram"] is not None else "-"
        lines.append(f"| {row['label']} | {row['frames']} | {' | '.join(cells)} | {wall[0]:.2f} ({wall[1]:.2f}-"
                     f"{wall[2]:.2f}) | {first} | {vram} | {row['rss'] / GiB:.2f} |")
    return "\n".join(lines)


def folder_files(models: str) -> dict[str, dict[str, Path]]:
    """{folder: {file name: path}} of a ComfyUI-style models directory."""
    root = Path(models)
    if not root.is_dir():
        raise SystemExit(f"--models {models}: not a directory")
    return {d.name: {f.name: f.resolve() for f in d.iterdir() if f.is_file()} for d in root.iterdir() if d.is_dir()}


def ballast(gib: float):
    """Hold everything free on CUDA device 0 beyond `gib` GiB; returns the tensor (keep it alive) and what is left."""
    import torch
    if not torch.cuda.is_available():
        raise SystemExit("--vram-gb needs a CUDA device")
    torch.cuda.init()
    free, total = torch.cuda.mem_get_info(0)
    extra = int(free - gib * GiB)
    if extra <= 0:
        return None, free
    block = torch.empty(extra, dtype=torch.uint8, device="cuda:0")
    return block, torch.cuda.mem_get_info(0)[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"),
                        help="ComfyUI checkout (main.py); default $COMFYUI_PATH")
    parser.add_argument("--frames", type=int, default=16, help="frames of the short workflows (default 16)")
    parser.add_argument("--long-frames", type=int, default=None,
                        help="frames of the context-window workflow (default: the workflow's own, 64)")
    parser.add_argument("--size", type=int, default=512, help="width and height in pixels (default 512)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: the motion module's)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per graph (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first: model loading (default 1)")
    parser.add_argument("--graphs", default=",".join(["plain", *SHIPPED, "t2v_upscale@anime"]),
                        help="comma-separated: shipped workflow names, 'plain' (t2v without the motion module), "
                             "'t2v_upscale@anime' (with realesr-animevideov3); default all")
    parser.add_argument("--models", help="use this models folder (checkpoints/, animatediff_models/, ...) instead of "
                                         "the harness's random-weight files")
    parser.add_argument("--cpu", action="store_true", help="run ComfyUI on the CPU even where CUDA is available")
    parser.add_argument("--vram-gb", type=float, default=None,
                        help="simulate a card with this much VRAM (GiB): this process holds the rest of the GPU's "
                             "free memory while ComfyUI runs")
    parser.add_argument("--compile", nargs="?", const="inductor", choices=("inductor", "cudagraphs"),
                        help="insert core's TorchCompileModel (default backend inductor) before each sampler")
    parser.add_argument("--interleave", action="store_true",
                        help="timed runs in rounds over the graphs instead of graph after graph (steadier ratios "
                             "on a machine whose load drifts)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one run may take")
    parser.add_argument("--json-out", help="append one JSON line per timed run to this file")
    parser.add_argument("--comfy-arg", action="append", default=[], help="extra ComfyUI argument (repeatable)")
    args = parser.parse_args(argv)
    # `timeout` sends SIGTERM: exit through the finally below, so the ComfyUI we started is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.comfyui or not (Path(args.comfyui) / "main.py").exists():
        parser.error("--comfyui must point at a ComfyUI checkout (the folder with main.py)")
    names = [n.strip() for n in args.graphs.split(",") if n.strip()]
    unknown = [n for n in names if n.split("@")[0] not in ("plain", *SHIPPED)]
    if unknown:
        parser.error(f"unknown graph(s) {unknown}; choose from plain, {', '.join(SHIPPED)}, t2v_upscale@anime")
    prompts = graphs(names, args.frames, args.size, args.long_frames, args.steps, args.compile)

    cpu = True if args.cpu else None
    held = None
    if args.vram_gb:
        held, left = ballast(args.vram_gb)
        print(f"simulating a {args.vram_gb:g} GiB card: {left / GiB:.2f} GiB of the GPU left free", flush=True)
    if args.models:
        models = folder_files(args.models)
    else:
        print("making / finding the random-weight model files ...", flush=True)
        models = model_files(args.comfyui)
    server = ComfyServer(args.comfyui, models, extra_args=args.comfy_arg, cpu=cpu, memory_route=True)
    rows = []
    try:
        server.wait_ready()
        device = memory(server) or {}
        where = "CPU" if server.cpu else device.get("device", "CUDA")
        header = (f"{where}, {os.cpu_count()} CPU cores, {args.size}x{args.size}, median of {args.runs} warm runs"
                  + (f", as a {args.vram_gb:g} GiB card" if held is not None else "")
                  + (f", TorchCompileModel({args.compile})" if args.compile else ""))
        print(f"ComfyUI {args.comfyui} on {header}", flush=True)
        if device.get("free") is not None:
            print(f"the server sees {device['free'] / GiB:.2f} GiB of {device['total'] / GiB:.2f} GiB free", flush=True)
        events = Events(server, "adl-e2e")
        every = run_all(server, events, prompts, args.warmup, args.runs, args.timeout, args.interleave)
        for label, api in prompts.items():
            rows.append(summarize(label, api, every[label]))
            if args.json_out:
                with open(args.json_out, "a") as f:
                    for r in every[label]:
                        f.write(json.dumps({**r, "device": where, "size": args.size, "compile": args.compile}) + "\n")
    except Exception:
        print(server.log()[-3000:], file=sys.stderr)
        raise
    finally:
        server.stop()
        del held
    by_label = {r["label"]: r for r in rows}
    print("\n" + markdown(rows, f"**{header}**"))
    motion, plain = by_label.get("t2v_lightning"), by_label.get("plain")
    if motion and plain and motion["sampler"] and plain["sampler"]:
        print(f"\nmotion-module overhead: sampler x{motion['sampler'] / plain['sampler']:.2f} "
              f"({motion['sampler']:.3f} s with, {plain['sampler']:.3f} s without), "
              f"end to end x{motion['wall'][0] / plain['wall'][0]:.2f}")
        if args.interleave:
            pairs = [m / p for m, p in zip(sampler_seconds(prompts["t2v_lightning"], every["t2v_lightning"]),
                                           sampler_seconds(prompts["plain"], every["plain"]))]
            print(f"per round (same-round sampler ratio): median x{statistics.median(pairs):.2f}, "
                  f"min x{min(pairs):.2f}, max x{max(pairs):.2f} over {len(pairs)} rounds")
            for label, api in prompts.items():
                switched = [s for r in every[label] if r.get("switch") for node, _, s in r["nodes"]
                            if node == sampler_id(api)]
                if switched:
                    print(f"{label}: sampler {statistics.median(switched):.3f} s in the run after another graph "
                          f"(median), {statistics.median(sampler_seconds(api, every[label])):.3f} s in the next")
    return 0


if __name__ == "__main__":
    sys.exit(main())
