"""Training: the loop over a batch of runs trained together, the minibatch order, the compiled
step, the batch's resume state, and recipe/ (optimisers, objectives, interventions).
"""
