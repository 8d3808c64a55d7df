"""Callbacks of the course recipes, in the style of SB3's ``StopTrainingOn*`` callbacks."""

from stable_baselines3.common.callbacks import BaseCallback


class StopTrainingOnSuccessStreak(BaseCallback):
    """
    Stop training once ``n_episodes`` training episodes in a row returned at least ``min_return``: the stopping rule
    of the DQN course notes, which end training after 10 consecutive successful episodes ("10 연속 에피소드 성공").
    The return is the environment's own, as ``Monitor`` records it (``info["episode"]["r"]``), so a reward-shaping
    wrapper outside ``Monitor`` does not change it. The episodes are the training episodes, exploration included;
    with several envs their episodes count in the order they end.

    :param n_episodes: successful episodes in a row that end training
    :param min_return: the return that makes an episode a success
    :param verbose: 1 prints the step at which training stops
    """

    def __init__(self, n_episodes: int = 10, min_return: float = 475.0, verbose: int = 0) -> None:
        super().__init__(verbose)
        if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 1:
            raise ValueError(f"n_episodes must be an integer >= 1, got {n_episodes!r}")
        self.n_episodes, self.min_return = n_episodes, float(min_return)
        self.streak = 0

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            if "episode" in info:
                self.streak = self.streak + 1 if info["episode"]["r"] >= self.min_return else 0
        if self.streak >= self.n_episodes:
            if self.verbose >= 1:
                print(
                    f"Stopping training at step {self.num_timesteps}: "
                    f"{self.streak} episodes in a row returned >= {self.min_return}"
                )
            return False
        return True
