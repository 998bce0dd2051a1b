"""Prediction: early-warning indicators, forecasts of the grokking epoch and their evaluation."""
