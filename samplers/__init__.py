"""Pure-torch sampling math (schedules, context windows, window noise, per-frame conds); nodes/ calls into it."""
