"""The job scheduler app: jobs, their runs, and the processes that run them."""
