"""Write tests/fixtures/client_page_golden.json: what tools/client.py answers for a fixed set of inputs.

The client (Python) and the app page (app_page/app_logic.js) make the same workflow edits and read ComfyUI's answers
the same way; both test suites check themselves against this one file (tests/unit/test_client.py,
tests/js/app_logic.test.mjs), so neither can drift from the other. Rerun after a deliberate change to the client:
    python -m dev.refresh_client_golden
"""
from __future__ import annotations

import json

from tools import client

from .node_defs import FIXTURES

GOLDEN = FIXTURES / "client_page_golden.json"
EDITS = [
    {"workflow": "t2v_lightning", "choices": {"prompt": "a red fox in snow", "seed": 7, "frames": 8, "width": 64,
                                              "height": 96, "checkpoint": "mine.safetensors",
                                              "motionModule": "animatediff_lightning_8step_comfyui.safetensors"}},
    # lora and upscale pick the workflow on the page (app_logic.js workflowsFor); the client is given it by name.
    {"workflow": "t2v_motion_lora", "choices": {"prompt": "a lighthouse", "seed": 123456789, "frames": 16,
                                                "width": 512, "height": 512, "lora": "v2_lora_ZoomIn.ckpt"}},
    {"workflow": "t2v_upscale", "choices": {"prompt": "waves", "seed": 0, "frames": 24, "width": 768, "height": 512,
                                            "motionModule": "animatediff_lightning_4step_diffusers.safetensors",
                                            "upscale": True}},
]
COMBOS = [[["a.safetensors", "b.ckpt"], {}], ["COMBO", {"options": ["c.safetensors"]}], ["INT", {"default": 1}],
          [], "STRING", [[1, 2], {}], ["COMBO", {}]]
SIZES = ["512x512", "512", "64x96", "768X512", " 512 x 256 ", "512x", "x512", "63x64", "64x60", "abc", "", "8x8"]
REJECTION = {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                       "details": ""},
             "node_errors": {"5": {"class_type": "ADLightning_Sampler", "errors": [
                 {"type": "value_smaller_than_min", "message": "Value 0.5 smaller than min of 1.0",
                  "details": "cfg", "extra_info": {"input_name": "cfg"}}]},
                 "9": {"class_type": "CheckpointLoaderSimple", "errors": [
                     {"type": "value_not_in_list", "message": "Value not in list", "details": "ckpt_name: 'x'",
                      "extra_info": {}}]}}}
FAILURE = {"prompt_id": "p", "node_id": "5", "node_type": "ADLightning_Sampler", "exception_type": "ScheduleError",
           "exception_message": "keyframe 40 is past the clip's 16 frames\n"}
HISTORY = {"outputs": {"8": {"images": [{"filename": "preview.png", "subfolder": "", "type": "temp"}]},
                       "9": {"images": [{"filename": "clip_00001.mp4", "subfolder": "AnimateDiff-Lightning",
                                         "type": "output"}], "animated": [True]},
                       "10": {"audio": [{"filename": "voice.flac", "subfolder": "", "type": "output"}]},
                       "11": {"gifs": [{"filename": "loop.webp", "subfolder": "a/b", "type": "output"}]}}}


def edited(workflow: str, choices: dict) -> dict:
    c = choices
    return client.apply_overrides(client.load_workflow(workflow), prompt=c.get("prompt"), seed=c.get("seed"),
                                  frames=c.get("frames"), size=f"{c['width']}x{c['height']}",
                                  ckpt=c.get("checkpoint"), motion_module=c.get("motionModule"))


def size_or_none(text: str):
    try:
        return list(client.parse_size(text))
    except client.ClientError:
        return None


STREAM = {"workflow": "t2v_lightning", "choices": {"prompt": "waves at dusk", "seed": 5, "frames": 16, "width": 64,
                                                   "height": 64}, "name": "s1",
          "previous": "AnimateDiff-Lightning/stream/s1_latent_00002_.latent"}
STREAM_HISTORY = {"outputs": {"12": {"latents": [{"filename": "s1_latent_00003_.latent",
                                                   "subfolder": "AnimateDiff-Lightning/stream", "type": "output"}]},
                              "10": {"images": [{"filename": "s1_00003.mp4",
                                                 "subfolder": "AnimateDiff-Lightning/stream",
                                                 "type": "output"}], "animated": [True]}}}


def golden() -> dict:
    api = client.load_workflow("t2v_lightning")
    stream_base = edited(STREAM["workflow"], STREAM["choices"])
    return {
        "stream": {**STREAM, "chunks": [client.stream_chunk(stream_base, index, STREAM["previous"], STREAM["name"])
                                        for index in (0, 1, 3)],
                   "history": STREAM_HISTORY, "latent": client.saved_latent(STREAM_HISTORY)},
        "edits": [{**case, "api": edited(**case)} for case in EDITS],
        "text_nodes": [{"workflow": name, "which": which,
                        "node": client.text_node_for(client.load_workflow(name), which)}
                       for name in ("t2v_lightning", "t2v_motion_lora", "t2v_upscale")
                       for which in ("positive", "negative")],
        "combos": [{"spec": spec, "options": client.combo_options(spec)} for spec in COMBOS],
        "sizes": [{"text": text, "size": size_or_none(text)} for text in SIZES],
        "rejection": {"workflow": "t2v_lightning", "answer": REJECTION,
                      "text": client.describe_rejection(api, REJECTION)},
        "failure": {"workflow": "t2v_lightning", "data": FAILURE, "text": client.describe_failure(api, FAILURE)},
        "outputs": {"history": HISTORY, "files": client.output_files(HISTORY)},
    }


def main() -> None:
    GOLDEN.write_text(json.dumps(golden(), indent=1) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
