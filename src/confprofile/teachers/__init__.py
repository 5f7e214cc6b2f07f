"""Teacher backends. Importing this package registers the built-in ones in `TEACHERS`."""

from confprofile.teachers.base import TEACHERS, Teacher, TeacherConfig, TeacherReply, TeacherRequest, build_teacher

# built-in backends register themselves on import (one line each):
import confprofile.teachers.openai_compat  # noqa: E402,F401  (openai)
import confprofile.teachers.transformers_backend  # noqa: E402,F401  (transformers)
import confprofile.teachers.smollm2  # noqa: E402,F401  (smollm2)
import confprofile.teachers.embedding  # noqa: E402,F401  (embedding)
import confprofile.teachers.vllm_backend  # noqa: E402,F401  (vllm)
import confprofile.teachers.rules  # noqa: E402,F401  (rules)

__all__ = ["TEACHERS", "Teacher", "TeacherConfig", "TeacherReply", "TeacherRequest", "build_teacher"]
