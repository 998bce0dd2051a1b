"""The local learning coefficient: the SGLD sampler, the estimator, its series over a run."""
