"""Pure-torch sampling math (schedules, context windows); the ComfyUI nodes in nodes/ call into it."""
