"""Backends of :class:`swalab.llm.LanguageModel`; each module imports its extra lazily."""
