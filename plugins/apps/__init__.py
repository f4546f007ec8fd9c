"""The bundled apps: what users do with a trained model, each a plugin like a third party's.

Each app registers its commands (``register_commands``), its kinds (``register_kinds``) and its
components through the same hooks a third-party plugin uses. App modules import neither torch
nor their heavy parts at import time: ``ganforge --help`` imports them to list their commands.
"""
