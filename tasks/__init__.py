"""The functions that jobs may run, registered with @task_function."""
