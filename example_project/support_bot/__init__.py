"""A small RAG support assistant: retrieve help-center passages, render the prompt from the
registry, ask a chat model through the official openai SDK."""

from .app import answer

__all__ = ["answer"]
