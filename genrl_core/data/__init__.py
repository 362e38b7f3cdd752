"""Offline data: OfflineData (offline), loading a dataset id as tensors (loading: Minari, D4RL's hdf5 files via d4rl,
toy bandits via bandits), and making D4RL-style Minari datasets on this machine (making, with the SAC in sac)."""

__all__ = ["bandits", "d4rl", "loading", "making", "offline", "sac"]
