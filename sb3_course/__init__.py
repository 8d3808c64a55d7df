from sb3_course.dqn import CourseDQN
from sb3_course.version import __version__

__all__ = [
    "CourseDQN",
    "__version__",
]
