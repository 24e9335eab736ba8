"""The trusted half of the exercise engine: declarations, references, misconception banks, bands,
and the judging of what an answer did.

In grading, the sandbox hides this folder from the student's kernel (the kernel only runs the answer
on its probes: :mod:`coursekit.exercises.runner`, :mod:`coursekit.exercises.channel`); the grading
process judges the records. Everything here may be imported freely in self-study.
"""
