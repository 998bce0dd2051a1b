"""Progress measures of Nanda et al. (2023), one module per family; pure functions on tensors.

Every function takes a leading `ckpt` axis so a batch of checkpoints is measured at once.
"""
