from sb3_course.a3c.a3c import A3C
from sb3_course.a3c.policies import A3CCnnPolicy, A3CMultiInputPolicy, A3CPolicy, ActorCriticMlpPolicy, MlpPolicy
from sb3_course.a3c.worker import A3CWorkerError

__all__ = ["A3C", "A3CCnnPolicy", "A3CMultiInputPolicy", "A3CPolicy", "A3CWorkerError", "ActorCriticMlpPolicy", "MlpPolicy"]
