from sb3_course.ddpg.ddpg import CourseDDPG
from sb3_course.ddpg.policies import CourseDDPGPolicy, MlpPolicy

__all__ = ["CourseDDPG", "CourseDDPGPolicy", "MlpPolicy"]
