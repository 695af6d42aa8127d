"""Agents for Tier 2 and 3: OpenHands conversations whose tools run in our sandboxes."""
