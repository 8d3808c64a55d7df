from sb3_course.sac.policies import CourseSACPolicy, MlpPolicy
from sb3_course.sac.sac import CourseSAC

__all__ = ["CourseSAC", "CourseSACPolicy", "MlpPolicy"]
