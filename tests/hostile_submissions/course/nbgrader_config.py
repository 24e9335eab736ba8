"""nbgrader configuration of the tiny course that the hostile-submission tests grade: the same settings
as the real course (coursekit/course_config.py), for a course of two small assignments."""
import os

from coursekit.course_config import apply

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)
apply(c, os.path.dirname(os.path.abspath(__file__)))
