"""Learning from outcomes: features of (demand, partner) pairs, learned rankers (estimator-style,
versioned model folders), training with a deployment gate, position-bias correction and the
outcome simulator.

May import: matcher base modules, matcher.io, matcher.retrieval and matcher.evaluate's metrics
(pure functions). Imported by: matcher.cli and the service (through the engine's reranker hook).
"""
