"""HumanLM on verl: the dataset, agent loop, reward manager, config and launcher.

- ``humanlm.verl.dataset.HumanlmDataset``: one item per (prepared example, state);
- ``humanlm.verl.agent_loop.HumanlmAgentLoop``: the ``humanlm_agent`` rollout;
- ``humanlm.verl.reward.HumanlmRewardManager``: one judge call per GRPO group;
- ``humanlm.verl.train.run_verl``: compose, validate and launch ``config/humanlm_grpo.yaml``;
- ``humanlm.verl.assistant_loop.HumanlmAssistantLoop``: the ``humanlm_assistant`` loop, an
  assistant policy against a simulated user (``assistant_train.plan_assistant``: its dry run).

Every module but ``train`` imports verl (``pip install 'humanlm[verl]'``); verl loads them by
``pkg://`` paths named in the config.
"""
