"""Backtest scaling policies on real request traces: simulator, baselines, report and plots."""
