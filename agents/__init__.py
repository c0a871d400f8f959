"""Contestants: persona agents that tune like people, and automated optimizers."""

from agents.base import Agent, Proposal, SessionView, TrialAgent
from agents.play import Session, SessionResult, play

__all__ = ["Agent", "Proposal", "Session", "SessionResult", "SessionView", "TrialAgent", "play"]
