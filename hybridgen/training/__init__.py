"""Training the toy-world critic and generator with the same public classes a user loads, on one training core
(`hybridgen.training.core`: schedule, optimiser step, resumable loop)."""
