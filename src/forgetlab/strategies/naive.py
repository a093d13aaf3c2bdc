"""Naive fine-tuning: each task in turn, nothing kept (the study's sequential training, the lower bound)."""

from __future__ import annotations

from forgetlab.strategies.base import Strategy, register


@register("naive")
class Naive(Strategy):
    """Fine-tune on each task in turn: the study's sequential training, the lower bound."""
