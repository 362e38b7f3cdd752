"""Running algorithms: the training loop with evaluation, checkpoints and resume (training), and N seeds trained as
one batched model (packing)."""

__all__ = ["packing", "training"]
