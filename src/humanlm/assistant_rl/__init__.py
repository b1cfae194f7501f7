"""A simulated user as the environment of an assistant trained with TRL's GRPO.

The assistant policy talks with any humanlm user simulator (``UserSimulator.from_spec``) over
several turns; the user's turns are kept out of the loss, an episode stops on the user's end
signal or after ``max_turns`` assistant turns, and the episode reward is pluggable:

- ``UserRollout``: TRL's ``rollout_func`` (``humanlm.assistant_rl.rollout``), and the training
  prompts from scenarios (``UserRollout.dataset``);
- ``Episode``, ``STOP_REASONS``, ``play_episodes``: one episode (``humanlm.assistant_rl.episode``);
- ``judge_reward`` (with ``ConversationJudge``), ``task_reward``, ``user_end_reward``: episode
  rewards with TRL's reward contract (``humanlm.assistant_rl.rewards``).

See docs/assistant_rl.md for a worked example.
"""

from humanlm.assistant_rl.episode import STOP_REASONS, Episode, EpisodeTokens, play_episodes
from humanlm.assistant_rl.rewards import (
    ConversationJudge,
    ConversationVerdict,
    judge_reward,
    task_reward,
    user_end_reward,
)
from humanlm.assistant_rl.rollout import UserRollout

__all__ = [
    "STOP_REASONS",
    "ConversationJudge",
    "ConversationVerdict",
    "Episode",
    "EpisodeTokens",
    "UserRollout",
    "judge_reward",
    "play_episodes",
    "task_reward",
    "user_end_reward",
]
