from sb3_course.reinforce.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, REINFORCEMultiInputPolicy, REINFORCEPolicy
from sb3_course.reinforce.reinforce import REINFORCE

__all__ = ["REINFORCE", "CnnPolicy", "MlpPolicy", "MultiInputPolicy", "REINFORCEMultiInputPolicy", "REINFORCEPolicy"]
