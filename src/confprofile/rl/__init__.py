"""Stage 2: confidence-guided unsupervised GRPO.

Pure pieces (no torch): `voting` (quasi ground truth per group), `rewards` (registered reward terms),
`filters` (difficulty filter before generation, group filter after), `group` (score a whole batch),
`guards.collapse_reason/dev_stop_reason`. Engines: `trainer` (TRL GRPOTrainer subclass that votes
after the cross-process gather), `guards.RLMonitor` (curves + early stop), `dev` (gold dev monitor,
evaluation only). Entry points: `command.train_rl`, `command.rl_command` (`confprofile rl`).
"""
