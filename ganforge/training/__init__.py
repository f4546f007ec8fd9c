"""Training: the loop (:mod:`.trainer`), the step machinery every method shares (:mod:`.engine`),
the checks of saved state (:mod:`.state`), whole-step CUDA graphs and DDP."""
