from sb3_course.dqn.dqn import CourseDQN
from sb3_course.dqn.policies import CnnPolicy, CourseDQNPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["CnnPolicy", "CourseDQN", "CourseDQNPolicy", "MlpPolicy", "MultiInputPolicy"]
