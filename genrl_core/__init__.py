"""The algorithm core, in layers; each imports only the layers above it in this list (no Ray anywhere):

    common         seeding, EMA, DivergenceError
    progress       a progress bar on a terminal, plain periodic lines otherwise
    generative/    probability paths, solvers, likelihoods, the generative model, fast sampling, flow maps, networks
    data/          offline datasets as tensors: Minari, D4RL files, toy bandits; making D4RL-style sets here
    evaluation     seeded vectorised rollouts and normalised scores
    algorithms/    critics, the Agent interface, one file per algorithm, the registry
    run/           the training loop (build, update, evaluate, checkpoint) and seed packing
    train, datasets, demo   command lines (python -m genrl_core.<name>); nothing in the core imports them
"""
