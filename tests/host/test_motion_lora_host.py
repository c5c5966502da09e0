"""Motion LoRA in real ComfyUI: the shipped LoRA workflow runs, strength 0 is exactly no LoRA, and it costs little RAM."""
import copy

import torch

from dev.harness.comfy_server import ComfyServer
from tests.host.conftest import (add_save_latent, comfy_path, load_api, model_files, nodes_of, read_latents, small)


def lora_graph(seed=0, lora_strength=0.75, sampler_strength=1.0, frames=16):
    api = small(load_api("t2v_motion_lora"), 64, frames)
    api[nodes_of(api, "ADLightning_LoadMotionLoRA")[0]]["inputs"]["strength"] = lora_strength
    sampler = nodes_of(api, "ADLightning_Sampler")[0]
    api[sampler]["inputs"].update(seed=seed, motion_lora_strength=sampler_strength)
    return api


def no_lora(api):
    api = copy.deepcopy(api)
    lora = nodes_of(api, "ADLightning_LoadMotionLoRA")[0]
    apply = nodes_of(api, "ADLightning_ApplyMotionModule")[0]
    api[apply]["inputs"]["motion_model"] = api[lora]["inputs"]["motion_model"]
    del api[lora]
    return api


def latents(server, api):
    api = copy.deepcopy(api)
    add_save_latent(api, [nodes_of(api, "ADLightning_Sampler")[0], 0])
    return read_latents(server, server.run(api))[0]


def test_lora_workflow_strengths(server):
    base = latents(server, no_lora(lora_graph(seed=11)))
    with_lora = latents(server, lora_graph(seed=11, lora_strength=0.75))
    assert with_lora.shape == (16, 4, 8, 8) and not torch.equal(base, with_lora)
    assert torch.equal(base, latents(server, lora_graph(seed=11, lora_strength=0.0)))
    assert torch.equal(base, latents(server, lora_graph(seed=11, lora_strength=0.75, sampler_strength=0.0)))
    # the sampler's strength multiplies: 1.5 x 0.5 is the same run as 0.75 x 1.0
    assert torch.allclose(with_lora, latents(server, lora_graph(seed=11, lora_strength=1.5, sampler_strength=0.5)),
                          atol=1e-4)
    assert "168 LoRA projections matched" in server.log()


def test_one_lora_adds_less_than_150_mb_peak_rss(server):
    """Peak RSS of a sampling run with one full-size rank-64 LoRA vs the same run without, in one fresh server whose
    models are already loaded (so the peak belongs to sampling, not to loading the checkpoint)."""
    server.post("/free", {"unload_models": True, "free_memory": True})
    api = lora_graph(seed=12)
    with ComfyServer(comfy_path(), model_files()) as srv:
        srv.run(no_lora(api))                         # warm-up: load checkpoint, motion module
        peaks = {}
        for label, graph in (("without", no_lora(api)), ("with", api)):
            graph[nodes_of(graph, "ADLightning_Sampler")[0]]["inputs"]["seed"] += 1 + len(peaks)
            srv.reset_peak_rss()
            srv.run(graph)
            peaks[label] = srv.peak_rss_bytes()
    growth = (peaks["with"] - peaks["without"]) / 2**20
    print(f"sampling peak RSS without LoRA {peaks['without'] / 2**30:.2f} GiB, with one LoRA "
          f"{peaks['with'] / 2**30:.2f} GiB, growth {growth:.0f} MiB")
    assert growth < 150
