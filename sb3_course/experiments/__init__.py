"""
The experiment runner shared by the tools (``sb3-course parity``, ``sb3-course verify``, the learning checks): one
training subprocess per run (:mod:`~sb3_course.experiments.jobs`), many runs over CPU slots or as Ray tasks with a
resumable store (:mod:`~sb3_course.experiments.store`, one archive of runs per sweep) and interruption
(:mod:`~sb3_course.experiments.runner`). It knows nothing of the recipes: what they decide about a run (its CPU
slots, its final model's return) is :mod:`sb3_course.zoo.runs`.
"""
