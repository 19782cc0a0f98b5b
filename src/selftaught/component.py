"""The bases of every config: a leaf module (it imports only pydantic), so any
layer -- tasks, backends, trainers, methods, the run config -- can build on it
without importing anything above it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: unknown keys are errors, values frozen (validated once, never mutated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(Section):
    """Base of every component's ``Config``; ``type`` is the registry key (a file name)."""

    type: str
