"""Students: one interface (`Student`), a registry by name (`STUDENTS`), the `encoder` CPU default and the LLM students."""

from confprofile.student.base import STUDENTS, Student, open_student, student_family
from confprofile.student.encoder import EncoderStudent, EncoderStudentConfig
from confprofile.student.llm import LLMStudent

__all__ = ["STUDENTS", "Student", "EncoderStudent", "EncoderStudentConfig", "LLMStudent", "open_student", "student_family"]
