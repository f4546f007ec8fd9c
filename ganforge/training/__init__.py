"""Training: the loop (:mod:`.trainer`), the step machinery all methods share (:mod:`.engine`), DDP."""
