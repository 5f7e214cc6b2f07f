"""Teacher backends. Importing this package registers the built-in ones in `TEACHERS`."""

from confprofile.teachers.base import TEACHERS, Teacher, TeacherConfig, TeacherReply, TeacherRequest, build_teacher

# built-in backends register themselves on import (one line each):

__all__ = ["TEACHERS", "Teacher", "TeacherConfig", "TeacherReply", "TeacherRequest", "build_teacher"]
