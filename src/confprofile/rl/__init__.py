"""Stage 2: confidence-guided unsupervised GRPO.

Pure pieces (no torch): `voting` (quasi ground truth per group), `rewards` (registered reward terms),
`filters` (difficulty filter before generation, group filter after), `group` (score a whole batch),
`guards.collapse_reason/dev_stop_reason`. Engines: `trainer` (TRL GRPOTrainer subclass that votes
after the cross-process gather), `guards.RLMonitor` (curves + early stop). Entry points: `command.train_rl` (LLM students),
`encoder_policy.train_encoder_stage2` (the encoder student); the verb is `cli/rl.py`. The optional
gold dev monitor lives outside this package (`confprofile.dev_monitor`, evaluation only).
"""
