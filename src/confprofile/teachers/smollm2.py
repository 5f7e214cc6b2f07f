"""`smollm2` teacher: the packaged SmolLM2-135M-Instruct through the transformers backend.

The embedded default teacher: no network, no model path. A 135M model rarely writes valid JSON for
six dimensions, so the preset scores the labels (`mode: score`) unless `params.mode` says otherwise.
The user data is capped at `max_user_tokens` (256 by default here) to keep CPU labelling fast.
"""

from __future__ import annotations

from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TEACHERS, TeacherConfig
from confprofile.teachers.transformers_backend import TransformersTeacher

DEFAULT_MAX_USER_TOKENS = 256


@TEACHERS.register("smollm2")
class SmolLM2Teacher(TransformersTeacher):
    default_mode = "score"

    def __init__(self, config: TeacherConfig, taxonomy: Taxonomy):
        if "max_user_tokens" not in config.model_fields_set:
            config = config.model_copy(update={"max_user_tokens": DEFAULT_MAX_USER_TOKENS})
        if not config.model:
            config = config.model_copy(update={"model": "smollm2"})
        super().__init__(config, taxonomy)

    def model_spec(self) -> str:
        from confprofile.models import SMOLLM2_NAMES, smollm2_dir

        return str(smollm2_dir()) if self.config.model.lower() in SMOLLM2_NAMES else self.config.model
