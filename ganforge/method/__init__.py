"""Writing a training method (docs/objectives.md): the declaration, ``Objective`` and its helpers."""
