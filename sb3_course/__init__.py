from sb3_course.a3c import A3C
from sb3_course.ddpg import CourseDDPG
from sb3_course.dqn import CourseDQN
from sb3_course.reinforce import REINFORCE
from sb3_course.sac import CourseSAC
from sb3_course.version import __version__

__all__ = [
    "A3C",
    "REINFORCE",
    "CourseDDPG",
    "CourseDQN",
    "CourseSAC",
    "__version__",
]
