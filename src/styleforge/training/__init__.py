"""The training loop and what it needs: optimisers, schedules, logging, checkpoints."""
