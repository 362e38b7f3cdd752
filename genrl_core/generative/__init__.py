"""Generative modelling: probability paths, ODE solvers, likelihoods, the generative model over them, fast
sampling, GTP's flow map, the networks, and Diffusion-QL's discrete DDPM."""

__all__ = ["ddpm", "fast_sampling", "flow_map", "likelihood", "metrics", "model", "networks", "paths", "solvers"]
