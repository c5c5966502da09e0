"""nodes/model_folders.py creates the folders it registers (stock ComfyUI has neither), with stand-ins for ComfyUI's
folder_paths module and the pack's comfy_compat (the file imports nothing else)."""
from __future__ import annotations

import importlib.util
import sys
import types

from dev.node_defs import REPO

PACKAGE = "adl_nodes_under_test"


class FakeFolderPaths(types.SimpleNamespace):
    def get_filename_list(self, name):
        return self.files[name]   # KeyError for a folder it does not know, as core

    def add_model_folder_path(self, name, path):
        """Core's public call: append a path, creating the entry with an empty extension set."""
        paths, exts = self.folder_names_and_paths.setdefault(name, ([], set()))
        if path not in paths:
            paths.append(path)


def load_with(folder_paths):
    def add_model_extensions(name, extensions):
        paths, exts = folder_paths.folder_names_and_paths[name]
        folder_paths.folder_names_and_paths[name] = (paths, set(exts) | set(extensions))

    package = types.ModuleType(PACKAGE)
    package.__path__ = [str(REPO / "nodes")]
    compat = types.ModuleType(f"{PACKAGE}.comfy_compat")
    compat.add_model_extensions = add_model_extensions
    stubs = {"folder_paths": folder_paths, PACKAGE: package, f"{PACKAGE}.comfy_compat": compat}
    sys.modules.update(stubs)
    try:
        spec = importlib.util.spec_from_file_location(f"{PACKAGE}.model_folders", REPO / "nodes" / "model_folders.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for name in stubs:
            del sys.modules[name]


def test_first_start_creates_the_folders_and_registers_them(tmp_path):
    fake = FakeFolderPaths(models_dir=str(tmp_path / "models"), folder_names_and_paths={})
    module = load_with(fake)
    module.register()
    for name in ("animatediff_models", "animatediff_motion_lora"):
        assert (tmp_path / "models" / name).is_dir()
        paths, exts = fake.folder_names_and_paths[name]
        assert paths == [str(tmp_path / "models" / name)] and ".safetensors" in exts and ".ckpt" in exts
    (tmp_path / "models" / "animatediff_models" / "kept.safetensors").write_bytes(b"x")
    module.register()   # a second start keeps what is there
    assert (tmp_path / "models" / "animatediff_models" / "kept.safetensors").read_bytes() == b"x"


def test_a_read_only_models_folder_is_a_warning_not_a_crash(tmp_path, caplog):
    (tmp_path / "models").write_text("a file where the folder should be")
    fake = FakeFolderPaths(models_dir=str(tmp_path / "models"), folder_names_and_paths={})
    load_with(fake).register()
    assert "cannot create" in caplog.text and "animatediff_models" in caplog.text
    assert "animatediff_models" in fake.folder_names_and_paths


def test_a_file_in_the_wrong_model_folder_is_named_with_where_it_belongs(tmp_path):
    fake = FakeFolderPaths(models_dir=str(tmp_path / "models"), folder_names_and_paths={},
                           files={"checkpoints": ["animatediff_lightning_4step_comfyui.safetensors", "sd15.safetensors"],
                                  "animatediff_models": [], "upscale_models": []})
    module = load_with(fake)
    message = module.not_in_folder("animatediff_lightning_4step_comfyui.safetensors", "animatediff_models",
                                   "motion modules")
    assert message.startswith("'animatediff_lightning_4step_comfyui.safetensors' is in models/checkpoints (an SD1.5 "
                              "checkpoint's folder), not in models/animatediff_models: motion modules belong in "
                              "models/animatediff_models. Move the file there")
    assert module.not_in_folder("nowhere.safetensors", "animatediff_models", "motion modules") == (
        "'nowhere.safetensors' is not in models/animatediff_models; put motion modules there and press R in ComfyUI "
        "(or restart it), or pick one of the files it has")
