"""Running jobs: the plan, the lock, one job's pipeline, and the executors that run many."""
