"""Rectified flow (the objective) and ODE samplers, shared by every generative network of the project."""
