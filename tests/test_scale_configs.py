"""The multi-GPU and remote-teacher config files load with the tools that will read them on a cluster.

No GPU here: accelerate parses its YAML; the DeepSpeed JSONs are checked against what the HF
Trainer fills in for "auto" (transformers.integrations.deepspeed), since deepspeed itself is GPU-only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from confprofile.teachers.base import load_teacher_configs

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# keys HfTrainerDeepSpeedConfig fills when they say "auto"
HF_AUTO = {
    "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size", "gradient_clipping",
    "fp16.enabled", "bf16.enabled", "zero_optimization.reduce_bucket_size",
    "zero_optimization.stage3_prefetch_bucket_size", "zero_optimization.stage3_param_persistence_threshold",
}


def _flatten(obj: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("name, stage", [("zero2", 2), ("zero3", 3), ("zero3_offload", 3)])
def test_deepspeed_configs_leave_only_trainer_filled_autos(name, stage):
    flat = _flatten(json.loads((CONFIGS / "deepspeed" / f"{name}.json").read_text()))
    assert flat["zero_optimization.stage"] == stage
    autos = {k for k, v in flat.items() if v == "auto"}
    assert autos <= HF_AUTO, autos - HF_AUTO
    assert {"train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "bf16.enabled"} <= autos  # trainer decides
    if stage == 3:
        assert flat["zero_optimization.stage3_gather_16bit_weights_on_model_save"] is True  # save_pretrained gets full weights


@pytest.mark.parametrize("path", sorted((CONFIGS / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_configs_load(path):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(path))
    assert config.num_processes == 8 * config.num_machines
    ds_file = config.deepspeed_config.get("deepspeed_config_file")
    if config.distributed_type.value == "DEEPSPEED":
        assert ds_file and (CONFIGS.parent / ds_file).exists()
        assert config.mixed_precision in (None, "no")  # with a DeepSpeed file, precision lives in the JSON
    else:
        assert ds_file is None and config.mixed_precision == "bf16"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("teachers_*.yaml")), ids=lambda p: p.name)
def test_teacher_files_validate(path):
    configs = load_teacher_configs(path)
    assert configs and all(c.backend in {"openai", "vllm"} for c in configs)


def test_rl_gpu_config_is_a_valid_rlconfig():
    import yaml

    from confprofile.rl.config import RLConfig

    config = RLConfig.from_dict(yaml.safe_load((CONFIGS / "rl_qwen3_8gpu.yaml").read_text()))
    assert config.use_vllm and config.num_generations >= 2


PIPELINE_CONFIGS = [p for p in sorted(CONFIGS.glob("*.yaml")) if "run_dir:" in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", PIPELINE_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_pipeline_config_validates(path):
    from confprofile.pipeline import PipelineConfig

    config = PipelineConfig.from_yaml(path)  # also checks teacher backends and prompt variants
    assert config.run_dir and (config.data.users or config.data.generate or config.data.train_users)
