"""Training the toy-world critic (and, later, generator) with the same public classes a user loads."""
