"""Writing a training method: the declaration, the :class:`Objective` base class and its helpers
(all exported from ``ganforge``; docs/objectives.md is the guide)."""
