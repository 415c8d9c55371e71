"""Stages (experts -> coreset -> evaluation -> report) talking through artifact directories."""
